"""Latency and error-rate arithmetic on fixed buckets, judged against Meta's alert thresholds.

Meta alerts on an endpoint's p90 latency (1 s / 5 s / 7 s) and error rate (5 % / 10 % / 50 %)
over 30 minutes (protocol doc 5.3). Keeping every sample would cost memory in proportion to
traffic; a fixed-bucket histogram per minute costs the same at 1 or 1,000 requests per second.
The thresholds are bucket bounds, so "is p90 above 1 s?" is answered exactly (the share of
requests at or under 1 s is below 90 %), while the p50/p90/p99 figures themselves are
interpolated inside a bucket, as Prometheus' histogram_quantile does.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds in seconds ("le"); one more slot counts what took longer than the last bound.
# Roughly logarithmic from 1 ms to 10 s, each bound at most 1.5x the one below, so a figure
# interpolated inside a bucket is within that factor wherever an endpoint really answers (a ping
# in 3 ms, a lookup in 200 ms, a slow API in 4 s). Meta's thresholds (1, 5, 7 s) are bounds.
# Changing these reinterprets stored bucket indices: bump LATENCY_VERSION with them.
BUCKETS = (0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
           0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
LATENCY_VERSION = "2"  # in the latency keys (metrics/store.py); 1 was 12 buckets from 25 ms
OVERFLOW = len(BUCKETS)
P90_THRESHOLDS = (1.0, 5.0, 7.0)
ERROR_RATE_THRESHOLDS = (0.05, 0.10, 0.50)
WINDOW_MINUTES = 30
LEVELS = ("ok", "alert", "severe", "critical")  # how many of Meta's thresholds are crossed


def bucket_index(seconds: float) -> int:
    """The first bucket whose bound is >= seconds (a sample of exactly 1.0 s is "le 1.0")."""
    return bisect_left(BUCKETS, max(0.0, seconds))


@dataclass
class Window:
    """Requests of one flow/action (or lookup) summed over a span of minutes."""

    counts: list = field(default_factory=lambda: [0] * (OVERFLOW + 1))
    errors: int = 0
    seconds: float = 0.0  # sum of all latencies

    @property
    def n(self) -> int:
        return sum(self.counts)

    def add(self, other: "Window") -> "Window":
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.errors += other.errors
        self.seconds += other.seconds
        return self

    def at_most(self, bound: float) -> float:
        """Share of requests that took <= bound (bound must be one of BUCKETS)."""
        if not self.n:
            return 1.0
        return sum(self.counts[: BUCKETS.index(bound) + 1]) / self.n

    def quantile(self, q: float) -> float | None:
        """Interpolated within the bucket; past the last bound the answer is that bound."""
        n = self.n
        if not n:
            return None
        rank = q * n
        seen = 0
        for i, count in enumerate(self.counts):
            if count and seen + count >= rank:
                if i == OVERFLOW:
                    return BUCKETS[-1]
                lower = BUCKETS[i - 1] if i else 0.0
                return lower + (BUCKETS[i] - lower) * (rank - seen) / count
            seen += count
        return BUCKETS[-1]

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    @property
    def latency_level(self) -> int:
        """0-3: how many p90 thresholds are exceeded (exact, since they are bucket bounds)."""
        if not self.n:
            return 0
        return sum(1 for t in P90_THRESHOLDS if self.at_most(t) < 0.9)

    @property
    def error_level(self) -> int:
        if not self.n:
            return 0
        return sum(1 for t in ERROR_RATE_THRESHOLDS if self.error_rate >= t)

    def summary(self) -> dict:
        q = {name: self.quantile(v) for name, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}
        return {
            "requests": self.n,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            **{k: (round(v, 4) if v is not None else None) for k, v in q.items()},
            "mean": round(self.seconds / self.n, 4) if self.n else None,
            "latency_level": LEVELS[self.latency_level],
            "error_level": LEVELS[self.error_level],
            "level": LEVELS[max(self.latency_level, self.error_level)],
        }


def parse_fields(fields: dict, into: dict) -> dict:
    """Fold ``{"<kind>|<flow>|<name>|<slot>": value}`` into ``{(kind, flow, name): Window}``.

    Slots: ``b<i>`` bucket count, ``n`` requests (implied by buckets), ``err``, ``us`` microseconds.
    """
    for raw_key, raw_value in fields.items():
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        parts = key.split("|")
        if len(parts) != 4:
            continue
        kind, flow, name, slot = parts
        window = into.setdefault((kind, flow, name), Window())
        value = int(raw_value)
        if slot.startswith("b") and slot[1:].isdigit() and int(slot[1:]) <= OVERFLOW:
            window.counts[int(slot[1:])] += value
        elif slot == "err":
            window.errors += value
        elif slot == "us":
            window.seconds += value / 1e6
    return into
