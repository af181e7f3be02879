"""What lookups keep in Redis: cached answers, fresh, then stale.

One key per (lookup, value): the answer and when it was fetched. It is *fresh* for the positive or
negative TTL, and may still be served *stale* up to the max age when the API fails. The value
itself is hashed into the key name, so no form value appears in a key.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass


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

    def key(self, value: str) -> str:
        digest = hashlib.sha256(value.encode()).hexdigest()[:32]
        return f"fg:lookup:{self.name}:{digest}"

    def get(self, value: str) -> Cached | None:
        raw = self.redis.get(self.key(value))
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            return Cached(entry["s"], entry.get("r"), max(0.0, time.time() - float(entry["at"])))
        except (ValueError, KeyError, TypeError):
            return None  # an entry we cannot read is no answer

    def is_fresh(self, cached: Cached) -> bool:
        return cached.age < (self.ttl if cached.status == "found" else self.negative_ttl)

    def is_servable_stale(self, cached: Cached) -> bool:
        return cached.age < self.stale_max_age

    def put(self, value: str, status: str, record: dict | None) -> None:
        if self.stale_max_age <= 0:
            return
        entry = json.dumps({"s": status, "r": record, "at": round(time.time(), 3)})
        self.redis.set(self.key(value), entry, ex=int(self.stale_max_age))

