"""Writing metrics: counters per flow and UTC day, latency per minute, a few capped lists.

Every key lives under ``fg:m:`` and is bounded: day hashes expire after 35 days, minute hashes
after the 30-minute window, lists and the recent-session index are trimmed on every write, and
the all-time totals (what Prometheus scrapes as counters) grow only with the number of distinct
labels, never with traffic. Labels must come from a finite vocabulary (screen ids, reasons,
channels), never from user input: ``clean`` only makes them safe, not few.

A ``Recorder`` collects writes and sends them in a single round trip on exit (in a web process,
to the process's ``Buffer``, which adds them up and writes once a second; ``metrics.buffer``)::

    with metrics.batch() as m:
        m.endpoint("member_check", "data_exchange", 0.042, 200)
        m.count("member_check", "screen", label="CONFIRM")
"""
from __future__ import annotations

import json
import math
import re
import time

from metrics.latency import LATENCY_VERSION, WINDOW_MINUTES, bucket_index

PREFIX = "fg:m"
FLOWS_KEY = f"{PREFIX}:flows"  # set of flow names that have metrics
# Latency hashes carry the bucket layout's version: a deploy that changes the bounds starts new
# histograms instead of reading old bucket counts against new bounds.
LATENCY_TOTAL_KEY = f"{PREFIX}:lat{LATENCY_VERSION}:total"
FLOWS_EVENTS_KEY = f"{PREFIX}:flows_events"  # the `flows` webhook alerts and status changes
RECENT_KEY = f"{PREFIX}:recent"  # sorted set: flow token -> last activity
DAY_TTL = 35 * 24 * 3600
MINUTE_TTL = (WINDOW_MINUTES + 2) * 60
FLOWS_EVENTS_MAX = 100
RECENT_MAX = 500
# Statuses that are answers, not failures: 427 is the protocol's "token no longer valid".
OK_STATUSES = (200, 427)
LOOKUP_FAILURES = ("timeout", "error", "breaker_open")
ALERT_FIELDS = ("event", "flow_id", "alert_state", "threshold", "p50_latency", "p90_latency",
                "error_rate", "availability", "requests_count", "old_status", "new_status", "message")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@/+-]")


def clean(label) -> str:
    """Safe inside a key field: no separator, no spaces, at most 64 characters."""
    return _UNSAFE.sub("_", str(label))[:64] or "_"


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def day_key(flow: str, day: str) -> str:
    return f"{PREFIX}:d:{day}:{flow}"


def total_key(flow: str) -> str:
    return f"{PREFIX}:t:{flow}"


def minute_key(minute: int) -> str:
    return f"{PREFIX}:lat{LATENCY_VERSION}:{minute}"


class Pending:
    """Metric writes added up, not yet sent: counters summed per (key, field), so a second's worth
    of requests costs one HINCRBY per distinct field instead of one per request."""

    def __init__(self):
        self.counts: dict[tuple[str, str], int] = {}  # (hash, field) -> HINCRBY amount
        self.expire: dict[str, int] = {}
        self.flows: set[str] = set()
        self.recent: dict[str, float] = {}  # flow token -> last activity
        self.events: list[str] = []  # `flows` webhook alerts, oldest first

    def __bool__(self) -> bool:
        return bool(self.counts or self.flows or self.recent or self.events)

    def incr(self, key: str, field: str, n: int = 1) -> None:
        self.counts[(key, field)] = self.counts.get((key, field), 0) + n

    def merge(self, other: "Pending") -> None:
        for (key, field), n in other.counts.items():
            self.incr(key, field, n)
        self.expire.update(other.expire)
        self.flows |= other.flows
        for token, at in other.recent.items():
            self.recent[token] = max(at, self.recent.get(token, 0.0))
        if len(self.recent) > RECENT_MAX:  # only the newest are kept in Redis anyway
            newest = sorted(self.recent.items(), key=lambda item: item[1])[-RECENT_MAX:]
            self.recent = dict(newest)
        self.events = (self.events + other.events)[-FLOWS_EVENTS_MAX:]

    def write(self, pipe) -> None:
        """Queue everything on ``pipe`` (the caller executes it)."""
        for (key, field), n in self.counts.items():
            pipe.hincrby(key, field, n)
        for key, ttl in self.expire.items():
            pipe.expire(key, ttl)
        if self.flows:
            pipe.sadd(FLOWS_KEY, *self.flows)
        if self.recent:
            pipe.zadd(RECENT_KEY, self.recent)
            pipe.zremrangebyrank(RECENT_KEY, 0, -RECENT_MAX - 1)
        if self.events:
            pipe.lpush(FLOWS_EVENTS_KEY, *self.events)
            pipe.ltrim(FLOWS_EVENTS_KEY, 0, FLOWS_EVENTS_MAX - 1)


class Recorder:
    """Collects one unit of metric writes; ``flush()`` (or leaving the ``with``) sends them in one
    round trip, or hands them to ``sink`` (a web process's ``metrics.buffer.Buffer``)."""

    def __init__(self, redis, now: float | None = None, sink=None):
        self._redis = redis
        self._sink = sink
        self._now = time.time() if now is None else now
        self._pending = Pending()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, Pending()
        if not pending:
            return
        if self._sink is not None:
            self._sink.add(pending)
            return
        pipe = self._redis.pipeline(transaction=False)
        pending.write(pipe)
        pipe.execute()

    # --- counters ---------------------------------------------------------------------------
    def _field(self, flow: str, field: str, n: int) -> None:
        flow = clean(flow)
        key = day_key(flow, day_of(self._now))
        self._pending.incr(key, field, n)
        self._pending.expire[key] = DAY_TTL
        self._pending.incr(total_key(flow), field, n)
        self._pending.flows.add(flow)

    def count(self, flow: str, event: str, n: int = 1, label=None) -> "Recorder":
        """``event``: sent, opened, screen (label=screen id), completed, failed (label=reason),
        abandoned, recovered (label="channel:step"), opt_out, refused, endpoint_error, ...;
        a tuple label is joined with ':'."""
        if isinstance(label, (tuple, list)):
            label = ":".join(clean(x) for x in label)
        field = f"c|{clean(event)}" + (f"|{clean(label)}" if label not in (None, "") else "")
        self._field(flow, field, n)
        return self

    def validation_failure(self, flow: str, field: str, check: str) -> "Recorder":
        self._field(flow, f"v|{clean(field)}|{clean(check)}", 1)
        return self

    # --- latency ----------------------------------------------------------------------------
    def _latency(self, kind: str, flow: str, name: str, seconds: float, error: bool,
                 status: int | None = None) -> None:
        base = f"{kind}|{clean(flow)}|{clean(name)}"
        slot = f"{base}|b{bucket_index(seconds)}"
        micros = int(max(0.0, seconds) * 1e6)
        key = minute_key(int(self._now // 60))
        for target in (key, LATENCY_TOTAL_KEY):
            self._pending.incr(target, slot)
            self._pending.incr(target, f"{base}|us", micros)
            if error:
                self._pending.incr(target, f"{base}|err")
        if status is not None:
            self._pending.incr(LATENCY_TOTAL_KEY, f"{base}|s{int(status)}")
        self._pending.expire[key] = MINUTE_TTL
        self._pending.flows.add(clean(flow))

    def endpoint(self, flow: str, action: str, seconds: float, status: int) -> "Recorder":
        """One Flow endpoint request: latency, action, HTTP status (anything but 200/427 is an
        error in Meta's error rate)."""
        error = status not in OK_STATUSES
        self._latency("e", flow, action, seconds, error, status)
        self._daily_request(flow, seconds, error)
        return self

    def _daily_request(self, flow: str, seconds: float, error: bool) -> None:
        """The day's requests, errors and latency in whole seconds rounded up: the figures Meta's
        Flow metrics give per day (ENDPOINT_REQUEST_COUNT, _ERROR, _LATENCY_SECONDS_CEIL), kept in
        the day hash only (``r|n``, ``r|err``, ``r|s1``..``r|s10``, ``r|s10+``) so `flask flows
        status` sets ours beside Meta's for the same days."""
        key = day_key(clean(flow), day_of(self._now))
        self._pending.incr(key, "r|n")
        if error:
            self._pending.incr(key, "r|err")
        ceil = max(1, math.ceil(seconds))
        self._pending.incr(key, f"r|s{ceil if ceil <= 10 else '10+'}")
        self._pending.expire[key] = DAY_TTL

    def lookup(self, flow: str, name: str, outcome: str, seconds: float) -> "Recorder":
        """outcome: hit, miss, stale, timeout, error, breaker_open."""
        self._field(flow, f"l|{clean(name)}|{clean(outcome)}", 1)
        self._latency("l", flow, name, seconds, outcome in LOOKUP_FAILURES)
        return self

    # --- lists ------------------------------------------------------------------------------
    def flows_event(self, value: dict) -> "Recorder":
        """A `flows` webhook change value (alert or status change), kept in a capped list."""
        entry = {k: value[k] for k in ALERT_FIELDS if k in value and value[k] is not None}
        entry = {k: (str(v)[:300] if isinstance(v, str) else v) for k, v in entry.items()}
        entry["received_at"] = round(self._now, 3)
        self._pending.events.append(json.dumps(entry, default=str))
        self._pending.incr(f"{PREFIX}:t:_alerts", clean(value.get("event", "unknown")))
        return self

    def session(self, token: str) -> "Recorder":
        """Mark a flow session as recently active (the dashboard lists the latest ones)."""
        self._pending.recent[token] = max(self._now, self._pending.recent.get(token, 0.0))
        return self
