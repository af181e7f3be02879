"""A circuit breaker per lookup, shared by every web process and worker through Redis.

After ``failures`` consecutive failures the lookup is skipped for ``open_seconds``; then one probe
at a time is let through (half-open): a success closes the breaker, a failure opens it again at
once. One Lua call per check, so two processes can never both decide to probe.
"""
from __future__ import annotations

import time

# KEYS: state hash, probe lock. ARGV: now (s), probe_ms.
# Returns 1 = closed (call), 2 = half-open and this caller is the probe (call), 0 = open (skip).
_ALLOW = """
local until_ = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if until_ == 0 then return 1 end
if tonumber(ARGV[1]) < until_ then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""

# KEYS: state hash, probe lock. ARGV: now, threshold, open_seconds. Returns 1 if now open.
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('DEL', KEYS[2])
redis.call('EXPIRE', KEYS[1], math.max(3600, math.floor(tonumber(ARGV[3]) * 10)))
if n >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', tostring(tonumber(ARGV[1]) + tonumber(ARGV[3])))
  return 1
end
return 0
"""


class Breaker:
    def __init__(self, redis, name: str, failures: int, open_seconds: float):
        self.redis = redis
        self.keys = [f"fg:breaker:{name}", f"fg:breaker:{name}:probe"]
        self.failures = max(1, failures)
        self.open_seconds = open_seconds
        self._allow = redis.register_script(_ALLOW)
        self._fail = redis.register_script(_FAIL)

    def queue_closed(self, pipe) -> None:
        """Queue the read that says whether the breaker is closed, on the caller's pipeline (the
        lookup's cache read goes with it); ``closed`` reads its answer."""
        pipe.hget(self.keys[0], "open_until")

    @staticmethod
    def closed(answer) -> bool:
        """Closed: no open_until, exactly the first test of the allow script, which only a
        breaker that opened needs to run (it alone may take the half-open probe)."""
        return answer is None

    def allow(self, probe_seconds: float = 5.0) -> bool:
        """May a call go out now? (False while open, and for all but one caller when half-open.)"""
        return bool(self._allow(keys=self.keys, args=[f"{time.time():.3f}", int(probe_seconds * 1000)]))

    def failure(self) -> bool:
        """Count a failure; True when the breaker is (now) open."""
        return bool(self._fail(keys=self.keys, args=[f"{time.time():.3f}", self.failures, self.open_seconds]))

    def success(self, pipe=None) -> None:
        # Only a breaker that counted failures has state to clear: the common path costs one DEL,
        # queued on ``pipe`` when the caller sends other writes with it.
        (self.redis if pipe is None else pipe).delete(*self.keys)

    def state(self) -> str:
        until = self.redis.hget(self.keys[0], "open_until")
        if until is None:
            return "closed"
        return "open" if time.time() < float(until) else "half_open"
