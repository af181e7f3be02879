"""A token bucket and a daily cap in Redis, shared by every worker process on every dyno.

WASenderApi enforces its plan's rate per session (1/min on trial, 1 per 5 s with account
protection, 256/min paid) and, on the trial plan, 50 sends a day; going over costs a 429 and,
worse, ban risk. Meta's Cloud API allows each business number 80 messages a second by default
(1,000 once upgraded; error 130429 past it) and each (number, user) pair about one message every
6 s (error 131056, for that user only) — docs/meta-facts.md. One Lua script refills and takes a
token atomically (and, for a pair held off after 131056, takes none), another counts the sends of
the last 24 hours, so N workers on any number of dynos together never exceed either.
"""
from __future__ import annotations

import hashlib
import re
import time
import uuid

# KEYS: bucket[, hold]. ARGV: capacity, refill per second, now, cost. Returns {granted (0/1), wait
# seconds, held (0/1)}: with a hold key that exists (a pair held off), nothing is taken.
_TAKE = """
if KEYS[2] then
  local held = redis.call('PTTL', KEYS[2])
  if held > 0 then return {0, tostring(held / 1000), 1} end
end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local granted = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  granted = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {granted, tostring(wait), 0}
"""

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|second|m|min|minute|h|hour)?\s*$")
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(text: str) -> float:
    """'1/min' → 1/60, '1/5s' → 0.2, '256/min' → 4.27: tokens per second."""
    m = _RATE.match(text or "")
    if not m:
        raise ValueError(f"rate {text!r} is not like '1/min' or '1/5s'")
    count, span, unit = float(m.group(1)), float(m.group(2) or 1), m.group(3) or "s"
    return count / (span * _UNITS[unit])


class TokenBucket:
    def __init__(self, redis, key: str, per_second: float, capacity: float = 1.0):
        self.redis = redis
        self.key = key
        self.per_second = per_second
        self.capacity = capacity
        self._take = redis.register_script(_TAKE)

    def take(self, cost: float = 1.0, now: float | None = None) -> tuple[bool, float]:
        """(granted, seconds to wait before a token is there)."""
        granted, wait, _ = self.take_unless_held(None, cost, now)
        return granted, wait

    def take_unless_held(self, hold: str | None, cost: float = 1.0,
                         now: float | None = None) -> tuple[bool, float, bool]:
        """``take``, unless the key ``hold`` exists (``hold``): then (False, its remaining
        seconds, True) and no token is taken. One round trip either way."""
        now = time.time() if now is None else now
        granted, wait, held = self._take(keys=[self.key] + ([hold] if hold else []),
                                         args=[self.capacity, self.per_second, f"{now:.6f}", cost])
        return bool(granted), float(wait), bool(held)

    def hold(self, key: str, seconds: float) -> None:
        """Hold off everything ``take_unless_held(key)`` guards for ``seconds``."""
        self.redis.set(key, 1, px=max(1, int(seconds * 1000)))

    def hold_off(self, seconds: float, now: float | None = None) -> None:
        """The server said 429 + retry_after: empty the bucket so nobody sends before then."""
        now = time.time() if now is None else now
        self.redis.hset(self.key, mapping={"tokens": str(-seconds * self.per_second), "at": f"{now:.6f}"})


# KEYS: sends (sorted set of timestamps). ARGV: cap, window seconds, now, member.
# Returns {granted (0/1), wait seconds}: a rolling window, so no 24 hours ever hold more than cap
# sends, whatever time of day the provider's own count restarts.
_DAILY = """
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= cap then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tostring(tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 60)
return {1, '0'}
"""


class DailyCap:
    """At most ``cap`` takes in any ``window`` seconds (default a day); ``cap`` 0 = no cap."""

    def __init__(self, redis, key: str, cap: int, window: float = 24 * 3600):
        self.redis = redis
        self.key = key
        self.cap = cap
        self.window = window
        self._take = redis.register_script(_DAILY)

    def take(self, now: float | None = None) -> tuple[bool, float]:
        """(granted, seconds until a send is allowed again)."""
        if self.cap <= 0:
            return True, 0.0
        now = time.time() if now is None else now
        granted, wait = self._take(keys=[self.key],
                                   args=[self.cap, self.window, f"{now:.6f}",
                                         f"{now:.6f}:{uuid.uuid4().hex[:8]}"])
        return bool(granted), float(wait)

    def used(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(self.redis.zcount(self.key, now - self.window, "+inf"))


class Throttled(Exception):
    """The shared limit leaves no send within the wait allowed: try again ``retry_after`` later."""

    def __init__(self, reason: str, retry_after: float):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


THROUGHPUT_EXCEEDED, PAIR_RATE = 130429, 131056  # Meta's error codes (docs/meta-facts.md)
PAIR_PAUSE = 6.0  # seconds: Meta allows about one message every 6 s per (number, user) pair
HEADROOM = 0.95  # share of the number's throughput the bucket paces at


class NumberThroughput:
    """Meta's limits for every business number this deployment sends from, shared through Redis:
    a token bucket per number at ``per_second`` (``WHATSAPP_THROUGHPUT``), and after a 131056 a hold
    on that (number, user) pair alone. A send waits for its token up to ``max_wait`` seconds (a
    job's thread can: jobs run many at once); beyond that, or while its pair is held, ``Throttled``
    (the job is retried that much later, nothing having been sent)."""

    def __init__(self, redis, per_second: float, max_wait: float = 2.0):
        self.redis = redis
        self.per_second = per_second
        self.max_wait = max_wait
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, number: str) -> TokenBucket:
        if number not in self._buckets:
            # No burst, and paced a little under the tier: requests leave evenly spaced but do not
            # arrive so (a few ms of jitter), and at exactly the tier some second would see one too
            # many: a 130429 holds the whole number off (measured: bench.webhooks, docs/benchmarks.md).
            self._buckets[number] = TokenBucket(self.redis, f"fg:graph:mps:{number}",
                                                self.per_second * HEADROOM)
        return self._buckets[number]

    @staticmethod
    def pair_key(number: str, user: str) -> str:
        return f"fg:graph:pair:{number}:{hashlib.sha256(user.encode()).hexdigest()[:16]}"

    def acquire(self, number: str, user: str) -> None:
        """Return once this send may go out; ``Throttled`` when it may not soon."""
        bucket, pair = self.bucket(number), self.pair_key(number, user)
        give_up = time.monotonic() + self.max_wait
        while True:
            granted, wait, held = bucket.take_unless_held(pair)
            if granted:
                return
            if held:
                raise Throttled(f"pair rate: this user held off after {PAIR_RATE}", wait)
            if time.monotonic() + wait > give_up:
                raise Throttled(f"throughput: {self.per_second:g} messages/s for this number", wait)
            time.sleep(wait)

    def refused(self, number: str, user: str, code: int | None, retry_after: float | None) -> None:
        """Meta said 130429 (everyone sending from this number waits) or 131056 (this user
        only)."""
        if code == THROUGHPUT_EXCEEDED:
            self.bucket(number).hold_off(retry_after or 1.0)
        elif code == PAIR_RATE:
            self.bucket(number).hold(self.pair_key(number, user), retry_after or PAIR_PAUSE)
