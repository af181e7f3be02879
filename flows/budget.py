"""The time budget of one endpoint request.

Meta cuts a request at 10 s and alerts at a p90 of 1 s; every call made while answering (a lookup,
a Redis round trip) asks the deadline how long it may take, so the reply is always in time.
"""
from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float, clock=time.monotonic):
        self._clock = clock
        started = clock()
        self.expires = started + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - self._clock())
