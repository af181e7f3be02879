"""What lookups keep in Redis: cached answers, fresh, then stale.

One key per (lookup, value): the answer and when it was fetched. It is *fresh* for the positive or
negative TTL, and may still be served *stale* up to the max age when the API fails. The value
itself is hashed into the key name, so no form value appears in a key.

In front of Redis, each process keeps what it last read or wrote for at most ``LOCAL_SECONDS``
and serves it only while it is fresh: a popular value costs no round trip, and an answer another
process fetched is seen at most that late. Stale answers (served when the API fails) and the
breaker are Redis's alone, and a ``fresh`` lookup never reads the cache at all.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

# How long a process serves a fresh answer from memory without asking Redis (bench/breakdown.py:
# one round trip is ~40% of a cached exchange's in-app CPU), and how many it keeps.
LOCAL_SECONDS = 1.0
LOCAL_ENTRIES = 4096


@dataclass(frozen=True)
class Cached:
    status: str  # "found" | "not_found"
    record: dict | None
    age: float


class AnswerCache:
    def __init__(self, redis, name: str, ttl: int, negative_ttl: int, stale_max_age: int):
        self.redis = redis
        self.name = name
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.stale_max_age = max(stale_max_age, ttl, negative_ttl)
        self._local: dict[str, tuple[float, bytes | str]] = {}  # key → (until, raw entry)

    def key(self, value: str) -> str:
        digest = hashlib.sha256(value.encode()).hexdigest()[:32]
        return f"fg:lookup:{self.name}:{digest}"

    def get(self, value: str) -> Cached | None:
        cached = self.remembered(value)
        if cached is not None:
            return cached
        pipe = self.redis.pipeline(transaction=False)
        self.queue_get(pipe, value)
        return self.parse(value, pipe.execute()[0])

    def remembered(self, value: str) -> Cached | None:
        """A fresh answer this process read or wrote less than LOCAL_SECONDS ago, or None."""
        local = self._local.get(self.key(value))
        if local is not None and local[0] > time.monotonic():
            cached = _parse(local[1])  # parsed each time: a handler may change the record it gets
            if cached is not None and self.is_fresh(cached):
                return cached
        return None

    def queue_get(self, pipe, value: str) -> None:
        """The Redis read, queued on the caller's pipeline (validation.lookups sends the breaker's
        state with it); ``parse`` reads its answer."""
        pipe.get(self.key(value))

    def parse(self, value: str, raw) -> Cached | None:
        if raw is None:
            return None
        self._remember(self.key(value), raw)
        return _parse(raw)

    def _remember(self, key: str, raw) -> None:
        if len(self._local) >= LOCAL_ENTRIES:
            self._local.clear()  # rare, and cheaper than keeping an order: all are ≤ 1 s old
        self._local[key] = (time.monotonic() + LOCAL_SECONDS, raw)

    def is_fresh(self, cached: Cached) -> bool:
        return cached.age < (self.ttl if cached.status == "found" else self.negative_ttl)

    def is_servable_stale(self, cached: Cached) -> bool:
        return cached.age < self.stale_max_age

    def put(self, value: str, status: str, record: dict | None, pipe=None) -> None:
        """Keep an answer; with ``pipe`` (a Redis pipeline) the write is queued on it, for the
        caller to send with its own (validation.lookups: the breaker's reset)."""
        if self.stale_max_age <= 0:
            return
        entry = json.dumps({"s": status, "r": record, "at": round(time.time(), 3)})
        (self.redis if pipe is None else pipe).set(self.key(value), entry, ex=int(self.stale_max_age))
        self._remember(self.key(value), entry)


def _parse(raw) -> Cached | None:
    try:
        entry = json.loads(raw)
        return Cached(entry["s"], entry.get("r"), max(0.0, time.time() - float(entry["at"])))
    except (ValueError, KeyError, TypeError):
        return None  # an entry we cannot read is no answer

