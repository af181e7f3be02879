"""The web side of both webhooks: store each event as an RQ job exactly once, or fail loudly.

Ordering is the whole point. For every item:

1. ``EXISTS seen`` — a redelivery within the dedupe window is skipped;
2. enqueue with a deterministic ``job_id`` and ``unique=True`` — RQ's Lua check refuses a second
   job with that id while the first one's hash exists (a concurrent delivery on another dyno);
3. only then ``SET seen EX <8 days>``.

Redis failing between 2 and 3 leaves a stored job and no mark: the request answers 503, Meta
redelivers, step 2 says "duplicate" and step 3 is retried. Marking first would do the opposite — a
mark with no job — and the event would be lost for good. If the job's own hash has already expired
(a redelivery days later after a failed mark) the job runs a second time, and its effects are
still sent once: every side effect is keyed by the message id (``workers/effects.py``).

The same functions take the events of a replayed dead letter (``workers/deadletters.py``), so a
replay is exactly as once-only as a delivery.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from rq.exceptions import DuplicateJobError

from flows.wasender_events import INBOUND as WASENDER_INBOUND
from flows.wasender_events import Event
from flows.webhook import COMPLETION, FLOW_EVENT, IDENTITY, INBOUND, STATUS, Item, digest
from workers.queues import DEFAULT, HIGH, LOW, enqueue

log = logging.getLogger("flowgate.webhooks")

# kind → (job function by dotted path, queue): the web side never imports job code.
ROUTES = {
    COMPLETION: ("workers.completion.process_completion", HIGH),
    INBOUND: ("workers.inbound.record_inbound", DEFAULT),
    STATUS: ("workers.inbound.record_status", LOW),
    FLOW_EVENT: ("workers.inbound.record_flow_event", LOW),
    IDENTITY: ("workers.inbound.record_identity_change", DEFAULT),
}
WASENDER_JOB = "workers.conversation.wasender_inbound"
# Prefixes of the job ids above (``Item.job_id``, ``wasender_job_id``): a failed job with one of
# them is a webhook event that exhausted its retries, shown with the dead letters.
EVENT_JOB_PREFIXES = tuple(f"{kind}-" for kind in ROUTES) + ("wsin-",)


@dataclass
class Accepted:
    enqueued: int = 0
    duplicates: int = 0


def seen_key(item: Item) -> str:
    return f"fg:seen:{item.kind}:{digest(item.dedupe)}"


def accept(redis, items: list[Item], retry, dedupe_seconds: int) -> Accepted:
    """Enqueue every new item; RedisError propagates (the blueprint answers 503)."""
    result = Accepted()
    for item in items:
        if redis.exists(seen_key(item)):
            result.duplicates += 1
            continue
        func, queue_name = ROUTES[item.kind]
        try:
            enqueue(redis, func, item.payload, item.phone_number_id, item.extra, queue_name=queue_name,
                    job_id=item.job_id, retry=retry)
            result.enqueued += 1
        except DuplicateJobError:
            result.duplicates += 1
        redis.set(seen_key(item), 1, ex=dedupe_seconds)
    return result


def wasender_job_id(message_id: str) -> str:
    return "wsin-" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def accept_wasender(redis, wasender, events: list[Event]) -> Accepted:
    """Inbound messages become jobs (a repeated delivery of one already taken is not queued
    again: unique job id); a session status is recorded at once. RedisError propagates."""
    result = Accepted()
    for event in events:
        if event.kind != WASENDER_INBOUND:
            wasender.record_status(event.payload["status"])
            continue
        m = event.payload
        try:
            enqueue(redis, WASENDER_JOB, m["wa_id"], m["text"], m["id"], queue_name=HIGH,
                    job_id=wasender_job_id(m["id"]))
            result.enqueued += 1
        except DuplicateJobError:
            result.duplicates += 1
    return result
