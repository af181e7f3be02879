"""RQ figures for the dashboard and /metrics (depth, failed jobs, oldest waiting job) and requeue:
plain RQ reads and one RQ write, so they live with the RQ setup.

Reads use plain ZCARD/LLEN/ZRANGE rather than RQ's ``registry.count``, which runs a cleanup
(with failure callbacks, for the started registry) as a side effect of looking.
"""
from __future__ import annotations

import re
import time

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from flows.identity import mask_text
from workers.queues import QUEUES, queue

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class NotRequeued(Exception):
    """The job is not (or no longer) in that queue's failed registry."""


def queue_figures(redis, names=QUEUES, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    qs = [queue(redis, name) for name in names]
    pipe = redis.pipeline(transaction=False)
    for q in qs:
        pipe.llen(q.key)
        pipe.zcard(q.failed_job_registry.key)
        pipe.zcard(q.scheduled_job_registry.key)
        pipe.zcard(q.started_job_registry.key)
        pipe.lindex(q.key, 0)  # RQ pushes to the right: the left end waited longest
    values = pipe.execute()
    rows = []
    for i, q in enumerate(qs):
        depth, failed, scheduled, started, oldest_id = values[i * 5: i * 5 + 5]
        rows.append({"queue": q.name, "depth": depth, "failed": failed, "scheduled": scheduled,
                     "started": started, "oldest_age_seconds": _age(redis, oldest_id, now)})
    return rows


def _age(redis, job_id, now: float) -> float | None:
    if not job_id:
        return None
    job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
    try:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    if job.enqueued_at is None:
        return None
    return round(max(0.0, now - job.enqueued_at.timestamp()), 1)


def failed_jobs(redis, names=QUEUES, limit: int = 20) -> list[dict]:
    """The newest failures first (the registry scores by expiry, so highest score = newest)."""
    rows = []
    for name in names:
        q = queue(redis, name)
        ids = [x.decode() if isinstance(x, bytes) else x
               for x in redis.zrevrange(q.failed_job_registry.key, 0, limit - 1)]
        for job_id, job in zip(ids, Job.fetch_many(ids, connection=redis, serializer=JSONSerializer)):
            if job is None:
                continue
            result = job.latest_result()
            error = (result.exc_string or "") if result is not None else ""
            last = [line for line in error.strip().splitlines() if line.strip()][-1:] or [""]
            rows.append({
                "queue": name, "id": job_id, "func": job.func_name,
                "ended_at": job.ended_at.isoformat(timespec="seconds") if job.ended_at else None,
                "error": mask_text(last[0])[:200],
            })
    rows.sort(key=lambda r: r["ended_at"] or "", reverse=True)
    return rows[:limit]


def requeue(redis, queue_name: str, job_id: str) -> None:
    if queue_name not in QUEUES or not JOB_ID.match(job_id or ""):
        raise NotRequeued(job_id)
    registry = queue(redis, queue_name).failed_job_registry
    try:
        registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):
        raise NotRequeued(job_id) from None
