"""Re-check values accepted unverified (a lookup with the *open* policy could not answer in time).

Runs after the Flow completes. Each value is looked up again with a fresh call and a job-sized
budget; the verdict (verified | rejected) is recorded on the session for the follow-up message
(``SessionStore.rechecked``). Idempotent: settled values are not looked up again. If an API still
cannot answer, the job raises and RQ retries it on the project's retry policy.
"""
from __future__ import annotations

import hashlib
import logging

from flask import current_app

from flows.budget import Deadline
from flows.sessions import SessionStore, short
from workers.queues import LOW, enqueue_once
from workers.recovery import job_id as fallback_job_id

log = logging.getLogger("flowgate.recheck")

CHECK_SECONDS = 10.0  # per value: a job is not bound by Meta's 10 s, but must not hang


class StillUnavailable(Exception):
    """A lookup could not answer yet: let RQ retry the job later."""


def job_id(token: str) -> str:
    # Tokens from other tools may hold any character; RQ ids allow letters, digits, _ and -.
    return "recheck-" + hashlib.sha256(token.encode()).hexdigest()[:32]


def schedule(connection, token: str):
    """Enqueue the re-check once per token (the completion job calls this). None when there is
    nothing to re-check or it is queued already."""
    if not connection.exists(SessionStore.key(token) + ":unverified"):
        return None
    return enqueue_once(connection, "workers.recheck.recheck_unverified", token, queue_name=LOW,
                        job_id=job_id(token))


def recheck_unverified(token: str) -> dict:
    """field → verdict for every value this run settled; raises StillUnavailable to be retried."""
    sessions = current_app.extensions["sessions"]
    lookups = current_app.extensions["lookups"]
    settled, waiting = {}, []
    for field, entry in sessions.unverified(token).items():
        lookup = entry.get("lookup")
        if lookup not in lookups:
            log.error("token=%s field=%s unknown lookup %r: dropped", short(token), field, lookup)
            sessions.settle_unverified(token, field, "dropped")
            continue
        answer = lookups[lookup].fetch(str(entry.get("value", "")), deadline=Deadline(CHECK_SECONDS),
                                       flow=entry.get("flow") or "-", fresh=True)
        if answer.unavailable:
            waiting.append(field)
            continue
        verdict = "verified" if answer.found else "rejected"
        if sessions.settle_unverified(token, field, verdict):
            settled[field] = verdict
            log.info("token=%s field=%s re-checked: %s", short(token), field, verdict)
    if "rejected" in settled.values():
        # Accepted open, now known bad: one fallback message tells the user and hands them the
        # Flow again (workers/recovery.py: once per session, by the channel rules).
        enqueue_once(current_app.extensions["redis"], "workers.recovery.fallback", token,
                     "invalid_after_completion", queue_name=LOW, job_id=fallback_job_id("fb", token))
    if waiting:
        raise StillUnavailable(f"{len(waiting)} value(s) still unverified for token {short(token)}")
    return settled


def after_completion(submission_id: str, token: str | None) -> str | None:
    """Post-completion hook (workers.completion.POST_COMPLETION_HOOKS): the re-check's job id."""
    job = schedule(current_app.extensions["redis"], token) if token else None
    return job.id if job is not None else None
