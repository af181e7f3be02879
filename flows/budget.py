"""The time budget of one endpoint request.

Meta cuts a request at 10 s and alerts at a p90 of 1 s; every call made while answering (a lookup,
a Redis round trip) asks the deadline how long it may take, so the reply is always in time.
"""
from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float, clock=time.monotonic):
        self._clock = clock
        self.started = clock()
        self.expires = self.started + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, timeout: float) -> float:
        """The timeout a call may use: its own, or what is left of the budget if that is less."""
        return min(timeout, self.remaining())

    def elapsed(self) -> float:
        return self._clock() - self.started
