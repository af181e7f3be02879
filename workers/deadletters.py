"""Dead letters: webhook events that were acknowledged but could not become work, kept raw and
replayable, so that nothing answered 2xx is lost silently.

Two kinds, one list (``overview``, the dashboard, ``flask messages deadletters``):

- **malformed** events (a message without ``from``, a status without an id, a WASender message
  from a LID…) that the parsers (``flows/webhook.py``, ``flows/wasender_events.py``) set aside as
  one-event bodies. Each is kept here once — its id is a digest of the source and the raw event, so
  Meta redelivering the batch for seven days does not add it again — bounded: at most ``CAP``
  entries (the oldest go first; ``evicted`` counts them), each for ``KEEP_SECONDS``, its raw event
  cut at ``MAX_EVENT_BYTES`` (a cut one is shown but cannot be replayed). Replaying one parses
  its body again with today's code and enqueues what that yields through the normal intake
  (``workers/intake.py``: seen marks and unique job ids), so a replay is once-only too.
- **failed jobs** of webhook events (an RQ job that used up its retries, in a queue's failed
  registry for ``FAILURE_TTL``): shown with their job arguments, which are the raw event, and
  replayed by requeueing the job; the registry's ZREM lets only one replay through.

What is shown is masked (``flows.identity.mask_text``: any run of digits that could be a phone
number keeps its last four); what is logged carries ids and reasons, never values.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from rq.job import Job
from rq.serializers import JSONSerializer

from flows import wasender_events, webhook
from flows.webhook import EnvelopeError, Reject, clean_strings
from workers import jobs
from flows.identity import mask_text
from workers.intake import EVENT_JOB_PREFIXES, accept, accept_wasender
from workers.queues import QUEUES, queue, retry_from

log = logging.getLogger("flowgate.deadletters")

CLOUD, WASENDER = "cloud", "wasender"
CAP = 1000
KEEP_SECONDS = 14 * 24 * 3600  # past Meta's 7 days of redelivery: a redelivered batch is recognised
MAX_EVENT_BYTES = 32 * 1024  # a Cloud API message event is ~1 KiB; worst case CAP × this = 32 MiB
INDEX = "fg:deadletters"  # pending ids, scored by when they were kept
EVICTED = "fg:deadletters:evicted"
PREFIX = "fg:deadletter:"
DEAD_LETTER_ID = re.compile(r"^dl-[0-9a-f]{24}$")
PENDING, REPLAYED = "pending", "replayed"

# KEYS: document, index, evicted counter. ARGV: document JSON, ttl, now, cap, id, key prefix.
# Exactly-once-ish: a document already there (pending or replayed) is a redelivery.
_KEEP = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('DEL', ARGV[6] .. id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('INCRBY', KEYS[3], over)
end
return 1
"""


@dataclass
class Kept:
    stored: int = 0
    duplicates: int = 0

    @property
    def total(self) -> int:
        return self.stored + self.duplicates


@dataclass(frozen=True)
class Replay:
    id: str
    state: str  # replayed | requeued | already_replayed | still_malformed | not_replayable | unknown
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.state in ("replayed", "requeued")


def dead_letter_id(source: str, raw: str) -> str:
    return "dl-" + hashlib.sha256(f"{source}\n{raw}".encode()).hexdigest()[:24]


class DeadLetters:
    def __init__(self, redis, cap: int = CAP, keep_seconds: int = KEEP_SECONDS):
        self.redis = redis
        self.cap = cap
        self.keep_seconds = keep_seconds
        self._keep = redis.register_script(_KEEP)

    def keep(self, source: str, rejects: list[Reject]) -> Kept:
        """Store each reject once; RedisError propagates (the webhook answers 503)."""
        kept = Kept()
        for reject in rejects:
            raw = _canonical(reject.event)
            dl_id = dead_letter_id(source, raw)
            now = time.time()  # unrounded: the index's order is the order kept in
            document = {"id": dl_id, "source": source, "reason": reject.reason, "at": round(now, 3),
                        "state": PENDING, "raw": raw[:MAX_EVENT_BYTES],
                        "truncated": len(raw) > MAX_EVENT_BYTES}
            if self._keep(keys=[PREFIX + dl_id, INDEX, EVICTED],
                          args=[json.dumps(document), self.keep_seconds, repr(now), self.cap, dl_id, PREFIX]):
                kept.stored += 1
                log.warning("dead letter %s kept (%s webhook): %s", dl_id, source, reject.reason)
            else:
                kept.duplicates += 1
        return kept

    def get(self, dl_id: str) -> dict | None:
        if not DEAD_LETTER_ID.match(dl_id or ""):
            return None
        raw = self.redis.get(PREFIX + dl_id)
        return json.loads(raw) if raw else None

    def pending_ids(self, limit: int | None = None) -> list[str]:
        """Newest first."""
        if limit is not None and limit < 1:
            return []
        end = -1 if limit is None else limit - 1
        return [i.decode() if isinstance(i, bytes) else i for i in self.redis.zrevrange(INDEX, 0, end)]

    def pending(self, limit: int = 20) -> list[dict]:
        ids = self.pending_ids(limit)
        docs = self.redis.mget([PREFIX + i for i in ids]) if ids else []
        return [json.loads(d) for d in docs if d]

    def counts(self) -> dict:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(INDEX)
        pipe.get(EVICTED)
        pending, evicted = pipe.execute()
        return {"pending": pending, "evicted": int(evicted or 0)}

    def mark_replayed(self, document: dict, detail: str) -> None:
        """The document stays until its TTL as ``replayed``: a later redelivery is still known."""
        document = {**document, "state": REPLAYED, "replayed_at": round(time.time(), 3), "outcome": detail}
        pipe = self.redis.pipeline()
        pipe.set(PREFIX + document["id"], json.dumps(document), keepttl=True, xx=True)
        pipe.zrem(INDEX, document["id"])
        pipe.execute()


def _canonical(event) -> str:
    """One text per event whatever the key order: the digest and what replay parses."""
    try:
        return json.dumps(event, sort_keys=True, separators=(",", ":"))
    except RecursionError:  # json.loads took it, a deeper stack cannot write it back
        return json.dumps({"unreadable": "nested too deeply to keep"})


# --- failed webhook jobs (RQ's failed registries) -------------------------------------------------

def failed_event_ids(redis, limit: int | None = None) -> list[tuple[str, str]]:
    """(queue, job id) of webhook event jobs in the failed registries, newest first."""
    found = []
    for name in QUEUES:
        key = queue(redis, name).failed_job_registry.key
        for raw_id, score in redis.zrevrange(key, 0, -1, withscores=True):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            if job_id.startswith(EVENT_JOB_PREFIXES):
                found.append((score, name, job_id))
    found.sort(reverse=True)
    return [(name, job_id) for _, name, job_id in (found if limit is None else found[:limit])]


def failed_events(redis, limit: int | None = 20, pairs: list[tuple[str, str]] | None = None) -> list[dict]:
    """Failed webhook jobs as rows like a dead letter's: their arguments are the raw event."""
    pairs = failed_event_ids(redis, limit) if pairs is None else pairs
    fetched = Job.fetch_many([j for _, j in pairs], connection=redis, serializer=JSONSerializer)
    rows = []
    for (name, job_id), job in zip(pairs, fetched):
        if job is None:
            continue
        result = job.latest_result()
        error = (result.exc_string or "") if result is not None else ""
        last = [line for line in error.strip().splitlines() if line.strip()][-1:] or [""]
        rows.append({"id": job_id, "kind": "failed_job", "source": name, "func": job.func_name,
                     "reason": mask_text(clean_strings(last[0]))[:200],
                     "at": job.ended_at.timestamp() if job.ended_at else None,
                     "raw": _canonical({"args": job.args}), "truncated": False})
    return rows


# --- what the dashboard and the CLI show --------------------------------------------------------

def shown(row: dict, pretty: bool = False) -> dict:
    """A row for people: phone-like digits masked, time readable, the event as text."""
    text = row.get("raw") or ""  # JSON written with ensure_ascii: plain ASCII
    if pretty and not row.get("truncated"):
        try:
            # Readable text, and a lone surrogate (escaped in the raw JSON) shown as U+FFFD.
            text = json.dumps(clean_strings(json.loads(text)), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    at = row.get("at")
    return {"id": row["id"], "kind": row.get("kind", "malformed"), "source": row.get("source", ""),
            "reason": row.get("reason", ""), "state": row.get("state", PENDING),
            "at": datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if at else "",
            "truncated": bool(row.get("truncated")), "event": mask_text(text),
            **({"outcome": row["outcome"]} if row.get("outcome") else {})}


def overview(redis, limit: int = 20) -> dict:
    """Pending dead letters and failed webhook jobs, newest first, masked."""
    store, failed = DeadLetters(redis), failed_event_ids(redis)
    return {**store.counts(), "failed_jobs": len(failed),
            "rows": [shown(r, pretty=True) for r in store.pending(limit)],
            "failed": [shown(r, pretty=True) for r in failed_events(redis, pairs=failed[:limit])]}


def find(redis, item_id: str) -> dict | None:
    """One dead letter or failed webhook job by id, masked; None when unknown."""
    if DEAD_LETTER_ID.match(item_id or ""):
        document = DeadLetters(redis).get(item_id)
        return shown(document, pretty=True) if document else None
    for row in failed_events(redis, limit=None):
        if row["id"] == item_id:
            return shown(row, pretty=True)
    return None


# --- replay ------------------------------------------------------------------------------------

def replay(redis, cfg, wasender, item_id: str) -> Replay:
    """Run one dead letter again (parse + intake) or requeue one failed webhook job."""
    if not DEAD_LETTER_ID.match(item_id or ""):
        return _requeue(redis, item_id)
    store = DeadLetters(redis)
    document = store.get(item_id)
    if document is None:
        return Replay(item_id, "unknown", "no such dead letter (unknown, expired or evicted)")
    if document.get("state") == REPLAYED:
        return Replay(item_id, "already_replayed", document.get("outcome", ""))
    if document.get("truncated"):
        return Replay(item_id, "not_replayable", f"raw event was cut at {MAX_EVENT_BYTES} bytes")
    parser = wasender_events.parse if document["source"] == WASENDER else webhook.parse
    try:
        parsed = parser(document["raw"].encode())
    except EnvelopeError as exc:
        return Replay(item_id, "still_malformed", str(exc))
    if parsed.rejects:
        return Replay(item_id, "still_malformed", parsed.rejects[0].reason)
    # Enqueued first, marked after: a failure between leaves a dead letter whose next replay
    # finds its jobs already there (duplicates), never a replayed mark without the jobs.
    if document["source"] == WASENDER:
        result = accept_wasender(redis, wasender, parsed.items)
    else:
        result = accept(redis, parsed.items, retry_from(cfg), cfg["WEBHOOK_DEDUPE_SECONDS"])
    detail = f"{result.enqueued} enqueued, {result.duplicates} duplicates, {parsed.ignored} ignored"
    store.mark_replayed(document, detail)
    log.info("dead letter %s replayed: %s", item_id, detail)
    return Replay(item_id, "replayed", detail)


def _requeue(redis, job_id: str) -> Replay:
    if not job_id.startswith(EVENT_JOB_PREFIXES):
        return Replay(job_id, "unknown", "not a dead letter or a failed webhook job")
    for name in QUEUES:
        try:
            jobs.requeue(redis, name, job_id)
        except jobs.NotRequeued:
            continue
        log.info("failed webhook job %s requeued on %s", job_id, name)
        return Replay(job_id, "requeued", f"back on {name}")
    return Replay(job_id, "unknown", "not in a failed registry (already requeued, or expired)")


def replay_all(redis, cfg, wasender) -> list[Replay]:
    ids = DeadLetters(redis).pending_ids() + [job_id for _, job_id in failed_event_ids(redis)]
    return [replay(redis, cfg, wasender, i) for i in ids]
