"""What lookups keep in Redis: cached answers (fresh, then stale) and outcome counters.

One key per (lookup, value): the answer and when it was fetched. It is *fresh* for the positive or
negative TTL, and may still be served *stale* up to the max age when the API fails. The value
itself is hashed into the key name, so no form value appears in a key.

Counters are one hash per day (``fg:lookups:YYYYMMDD``, kept 8 days) with a field per
flow, lookup and outcome plus latency buckets: small and bounded, for the dashboard.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

OUTCOMES = ("hit", "miss", "stale", "timeout", "error", "breaker_open")
LATENCY_BUCKETS_MS = (5, 25, 100, 250, 500, 1000, 3000)
STATS_DAYS = 8


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


def stats_key(day: str | None = None) -> str:
    return "fg:lookups:" + (day or time.strftime("%Y%m%d", time.gmtime()))


def count(redis, flow: str, lookup: str, outcome: str, seconds: float) -> None:
    """One pipelined round trip: the outcome, the call count, the time spent, a latency bucket."""
    ms = seconds * 1000
    bucket = next((f"le_{b}" for b in LATENCY_BUCKETS_MS if ms <= b), "le_inf")
    prefix = f"{flow}|{lookup}|"
    key = stats_key()
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(key, prefix + outcome, 1)
    pipe.hincrby(key, prefix + "calls", 1)
    pipe.hincrby(key, prefix + "ms_total", int(round(ms)))
    pipe.hincrby(key, prefix + bucket, 1)
    pipe.expire(key, STATS_DAYS * 86400)
    pipe.execute()


def read_stats(redis, day: str | None = None) -> dict:
    """{flow: {lookup: {field: n}}} for one day (today by default)."""
    out: dict = {}
    for field, n in redis.hgetall(stats_key(day)).items():
        flow, lookup, name = field.decode().split("|", 2)
        out.setdefault(flow, {}).setdefault(lookup, {})[name] = int(n)
    return out
