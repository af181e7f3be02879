"""Upgrading from Redis-only Flowgate: copy the submissions and the opt-outs Redis still holds.

Before issue 20 a submission was a JSON document ``fg:submission:<id>`` (with a TTL) indexed by the
sorted set ``fg:submissions``, and an opt-out an ``opted_out`` field (its time) on a contact hash
``fg:contact:<key>``. Copying is idempotent (the submission's message id and the opt-out's
identifier are unique in SQL), so the release phase runs it on every deploy; the Redis keys are
left for their TTLs to end.
"""
from __future__ import annotations

import json

from records import Records
from records.consent import subjects

SUBMISSIONS_INDEX = "fg:submissions"
PROFILE = ("phone", "bsuid", "parent_bsuid", "opted_out", "opt_out_channel")


def _s(value):
    return value.decode() if isinstance(value, bytes) else value


def copy_submissions(redis, records: Records, batch: int = 200) -> tuple[int, int]:
    """(copied, already there) of the submissions Redis still holds."""
    copied = present = 0
    ids = [_s(i) for i in redis.zrange(SUBMISSIONS_INDEX, 0, -1)]
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        for raw in redis.mget([f"fg:submission:{i}" for i in chunk]):
            if not raw:
                continue  # expired since it was indexed
            document = json.loads(raw)
            if not isinstance(document, dict) or not document.get("id") or not document.get("message_id"):
                continue
            document.setdefault("stored_at", document.get("received_at"))
            if records.submissions.add(document):
                copied += 1
            else:
                present += 1
    return copied, present


def copy_opt_outs(redis, records: Records) -> tuple[int, int]:
    """(copied, already there) of the opt-outs on contact records (``SCAN``: no key is missed,
    and Redis is never blocked)."""
    copied = present = 0
    for key in redis.scan_iter(match="fg:contact:*", count=500):
        key = _s(key)
        if key.endswith((":texts", ":sessions")) or _s(redis.type(key)) != "hash":
            continue
        fields = dict(zip(PROFILE, (_s(v) for v in redis.hmget(key, *PROFILE))))
        if not fields["opted_out"]:
            continue
        who = subjects(fields["phone"], fields["bsuid"], fields["parent_bsuid"])
        if not who:  # an old record keyed by the phone alone
            own = key[len("fg:contact:"):]
            who = [f"p:{own}"] if own.isdigit() else [f"b:{own[2:]}"] if own.startswith("b:") else []
        if not who:
            continue
        # The cause: the opt-out's own time, so running this again writes nothing new.
        if records.consent.record(who, "opt_out", fields["opt_out_channel"] or "migrated",
                                  at=float(fields["opted_out"])):
            copied += 1
        else:
            present += 1
    return copied, present
