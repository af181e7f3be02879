"""Exactly-once side effects across retries, duplicate jobs and dead workers.

``once(redis, key, send)`` runs ``send()`` unless an earlier run recorded success under ``key``.
A short lock keeps two workers from sending at the same moment; success is recorded only after
``send()`` returned. The residual risk is the instant between the remote API accepting the
message and the record being written: a worker killed exactly there leaves no record, and the
retry sends again (neither the Cloud API nor WASender takes an idempotency key). The window is
one Redis round trip wide.
"""
from __future__ import annotations

import json
import uuid

DONE_TTL = 30 * 24 * 3600
LOCK_TTL = 120  # longer than any single send (timeouts are 10 s); a dead worker's lock expires


class InProgress(Exception):
    """Another worker holds the lock for this effect: retry later (RQ's retry does)."""


def done(redis, key: str) -> dict | None:
    raw = redis.get(f"fg:effect:{key}")
    return json.loads(raw) if raw else None


def once(redis, key: str, send) -> tuple[dict, bool]:
    """(recorded result, whether this call performed the effect)."""
    recorded = done(redis, key)
    if recorded is not None:
        return recorded, False
    owner = uuid.uuid4().hex
    lock = f"fg:effect:{key}:lock"
    if not redis.set(lock, owner, nx=True, ex=LOCK_TTL):
        raise InProgress(key)
    try:
        recorded = done(redis, key)  # finished between our first look and the lock
        if recorded is not None:
            return recorded, False
        result = send()
        redis.set(f"fg:effect:{key}", json.dumps(result), ex=DONE_TTL)
        return result, True
    finally:
        # Release only our own lock (compare-and-delete), never one taken over after expiry.
        redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                   1, lock, owner)
