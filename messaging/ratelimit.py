"""A token bucket and a daily cap in Redis, shared by every worker process on every dyno.

WASenderApi enforces its plan's rate per session (1/min on trial, 1 per 5 s with account
protection, 256/min paid) and, on the trial plan, 50 sends a day; going over costs a 429 and,
worse, ban risk. One Lua script refills and takes a token atomically, another counts the sends of
the last 24 hours, so N workers together never exceed either.
"""
from __future__ import annotations

import re
import time
import uuid

# KEYS: bucket. ARGV: capacity, refill per second, now, cost. Returns {granted (0/1), wait seconds}.
_TAKE = """
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
return {granted, tostring(wait)}
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
        now = time.time() if now is None else now
        granted, wait = self._take(keys=[self.key],
                                   args=[self.capacity, self.per_second, f"{now:.6f}", cost])
        return bool(granted), float(wait)

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
