"""Appointment slots: holds and bookings in Redis, atomic, so a slot has at most one owner.

A hold is ``SET NX PX`` in a Lua script (re-holding your own slot just extends it); it expires on
its own, which frees the slot. A booking turns the caller's hold (or a free slot) into a booking in
one script, so a slot can never be booked twice nor booked over someone else's live hold.

Reads degrade without Redis (no slot is known to be taken: the hold, a write, still decides);
writes raise RedisError, which the engine answers with "try again" (flows/engine.py).
"""
from __future__ import annotations

import logging

from redis.exceptions import RedisError
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.slots")

# KEYS: hold, booking. ARGV: token, hold_ms. Returns 1 when the caller holds the slot.
_HOLD = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: hold, booking. ARGV: token, booking_ttl_s. Returns 1 booked (or already booked by caller).
_BOOK = """
local booked = redis.call('GET', KEYS[2])
if booked then return booked == ARGV[1] and 1 or 0 end
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: hold. ARGV: token. Deletes the hold only if the caller owns it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

BOOKING_TTL = 90 * 24 * 3600  # the demo keeps bookings a quarter; the calendar API owns them for real


class SlotHolds:
    def __init__(self, redis, hold_seconds: float, calendar: str = "demo"):
        self.redis = redis
        self.hold_seconds = hold_seconds
        self.calendar = calendar
        self._hold = redis.register_script(_HOLD)
        self._book = redis.register_script(_BOOK)
        self._release = redis.register_script(_RELEASE)

    def _keys(self, day: str, time: str) -> list[str]:
        base = f"fg:slot:{self.calendar}:{day}:{time}"
        return [base + ":hold", base + ":booked"]

    def hold(self, day: str, time: str, token: str) -> bool:
        ms = max(1, int(self.hold_seconds * 1000))
        return bool(self._hold(keys=self._keys(day, time), args=[token, ms]))

    def release(self, day: str, time: str, token: str) -> bool:
        return bool(self._release(keys=self._keys(day, time)[:1], args=[token]))

    def book(self, day: str, time: str, token: str) -> bool:
        return bool(self._book(keys=self._keys(day, time), args=[token, BOOKING_TTL]))

    def owner(self, day: str, time: str) -> tuple[str | None, str | None]:
        """(holder, booker) of a slot, for tests and the dashboard."""
        hold, booked = self.redis.mget(self._keys(day, time))
        return _s(hold), _s(booked)

    def unavailable(self, day: str, times, token: str | None) -> set[str]:
        """The times held by someone else or booked: one MGET for the whole day."""
        times = list(times)
        if not times:
            return set()
        keys = [k for t in times for k in self._keys(day, t)]
        try:
            values = [_s(v) for v in self.redis.mget(keys)]
        except RedisError as exc:
            redis_unavailable(log, "slot holds", exc, "listing every time")
            return set()
        out = set()
        for i, t in enumerate(times):
            hold, booked = values[2 * i], values[2 * i + 1]
            if booked or (hold and hold != token):
                out.add(t)
        return out


def _s(value):
    return value.decode() if isinstance(value, bytes) else value
