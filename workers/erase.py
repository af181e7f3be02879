"""A data-protection request: one person erased everywhere, in Redis and in SQL.

Found by any identifier (a phone, a BSUID); the contact record links the others. Erased: the
contact record and its aliases, texts and session list; each of their Flow sessions with its
timeline; their entries in the fallback list, the console outbox and the dead letters; Redis-only
submissions an upgrade left; any other key named after one of their identifiers (exactly-once
records such as ``fg:effect:stop-<phone>``); their submissions and logged messages in SQL. Kept:
the consent ledger (an opt-out must survive the erasure, or the next campaign would message them
again).
"""
from __future__ import annotations

from flows.identity import coerce
from messaging.console import OUTBOX as CONSOLE_OUTBOX
from messaging.fallback import PENDING as FALLBACK
from stores.contacts import alias_key
from records import legacy
from workers import deadletters

LISTS = (FALLBACK, CONSOLE_OUTBOX)


def erase(redis, contacts, sessions, records, who) -> dict:
    user = coerce(who)
    if not user.known:
        raise ValueError("a phone number or a BSUID")
    user = contacts.resolve(user, enrich=True)
    ids = [v for v in (user.phone, user.bsuid, user.parent_bsuid) if v]
    tokens = contacts.recent_sessions(user)
    counts = {"sessions": 0, "list_entries": 0}
    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.delete(sessions.key(token), sessions.key(token) + ":timeline")
        counts["sessions"] += 1
    record = contacts.record(user.key)
    pipe.delete(record, record + ":texts", record + ":sessions")
    for kind, value in (("p", user.phone), ("b", user.bsuid), ("b", user.parent_bsuid)):
        if value:
            pipe.delete(alias_key(kind, value))
    pipe.execute()
    for name in LISTS:
        counts["list_entries"] += _drop_entries(redis, name, ids)
    counts["dead_letters"] = _drop_dead_letters(redis, ids)
    counts["legacy_submissions"] = _drop_legacy_submissions(redis, ids)
    counts["other_keys"] = _drop_named(redis, ids)
    counts.update({f"sql_{k}": v for k, v in records.erase_user(ids).items()})
    return counts


def _drop_entries(redis, name: str, ids: list[str]) -> int:
    """LREM each entry of a JSON list that names one of the identifiers (lists of at most a few
    thousand entries: read once, removed by value)."""
    if _type(redis, name) != "list":
        return 0
    removed = 0
    for raw in redis.lrange(name, 0, -1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if any(i in text for i in ids):
            removed += redis.lrem(name, 0, raw)
    return removed


def _drop_dead_letters(redis, ids: list[str]) -> int:
    removed = 0
    for raw_id in redis.zrange(deadletters.INDEX, 0, -1):
        item = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        document = redis.get(deadletters.PREFIX + item)
        text = document.decode("utf-8", "replace") if isinstance(document, bytes) else str(document or "")
        if any(i in text for i in ids):
            redis.delete(deadletters.PREFIX + item)
            removed += redis.zrem(deadletters.INDEX, raw_id)
    return removed


def _drop_legacy_submissions(redis, ids: list[str]) -> int:
    """Submissions a Redis-only Flowgate stored (``records/legacy.py``), until their TTL ends."""
    removed = 0
    for raw_id in redis.zrange(legacy.SUBMISSIONS_INDEX, 0, -1):
        item = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        document = redis.get(f"fg:submission:{item}")
        text = document.decode("utf-8", "replace") if isinstance(document, bytes) else str(document or "")
        if any(i in text for i in ids):
            redis.delete(f"fg:submission:{item}")
            removed += redis.zrem(legacy.SUBMISSIONS_INDEX, raw_id)
    return removed


def _drop_named(redis, ids: list[str]) -> int:
    """Any other key whose name holds one of the identifiers (exactly-once records such as
    ``fg:effect:stop-<phone>``): found by SCAN, which never blocks Redis."""
    removed = 0
    for ident in ids:
        pattern = "*" + "".join("\\" + c if c in "*?[]\\" else c for c in ident) + "*"
        for key in redis.scan_iter(match=pattern, count=1000):
            removed += redis.delete(key)
    return removed


def _type(redis, name: str) -> str:
    kind = redis.type(name)
    return kind.decode() if isinstance(kind, bytes) else kind
