"""Conversion and health metrics, kept in Redis and shared by every process (no Flask here).

The API other subsystems call (each call is one pipelined round trip; errors are redis-py's
``RedisError`` and are the caller's to swallow when a metric must never cost a user a reply)::

    from metrics import Metrics
    m = Metrics(redis)                                   # app.extensions["metrics"] in the app
    m.buffered(seconds=1.0)                              # web processes: sum in memory, write 1/s

    m.count(flow, event, n=1, label=None)                # per flow and UTC day, and all-time
        # events: "sent", "opened", "screen" (label=screen id), "completed",
        # "failed" (label=reason), "abandoned", "recovered" (label=(channel, step)),
        # "opt_out", "refused", "endpoint_error" (label=engine event)
    m.endpoint(flow, action, seconds, status)            # every Flow endpoint request
    m.lookup(flow, name, outcome, seconds)               # hit|miss|stale|timeout|error|breaker_open
    m.validation_failure(flow, field, check)             # e.g. ("member_id", "not_found")
    m.flows_event(value)                                 # a `flows` webhook change value
    m.session(token)                                     # index a session as recently active

    with m.batch() as r:                                 # several writes, still one round trip
        r.endpoint(...); r.count(...)

    m.snapshot(days=7) -> dict                           # what /dashboard/metrics.json returns

Layout: ``metrics.latency`` (bucket math, Meta's thresholds), ``metrics.store`` (writes, key
names, TTLs), ``metrics.snapshot`` (reads of these counters). What the dashboard and GET /metrics
show of other subsystems is read in ``dashboard/`` (RQ figures: ``workers/jobs.py``), so this
package imports nothing above it.
"""
from __future__ import annotations

from metrics.latency import ERROR_RATE_THRESHOLDS, P90_THRESHOLDS, WINDOW_MINUTES  # noqa: F401
from metrics.buffer import Buffer
from metrics.store import Recorder


class Metrics:
    def __init__(self, redis):
        self.redis = redis
        self.buffer: Buffer | None = None

    def buffered(self, seconds: float) -> Buffer:
        """From now on, add writes up in this process and send them every ``seconds`` (a web
        process, after the fork; ``metrics.buffer`` says what that costs)."""
        self.buffer = Buffer(self.redis, seconds).start()
        return self.buffer

    def batch(self, now: float | None = None) -> Recorder:
        return Recorder(self.redis, now, sink=self.buffer)

    def count(self, flow: str, event: str, n: int = 1, label=None) -> None:
        with self.batch() as r:
            r.count(flow, event, n, label)

    def endpoint(self, flow: str, action: str, seconds: float, status: int) -> None:
        with self.batch() as r:
            r.endpoint(flow, action, seconds, status)

    def lookup(self, flow: str, name: str, outcome: str, seconds: float) -> None:
        with self.batch() as r:
            r.lookup(flow, name, outcome, seconds)

    def validation_failure(self, flow: str, field: str, check: str) -> None:
        with self.batch() as r:
            r.validation_failure(flow, field, check)

    def flows_event(self, value: dict) -> None:
        with self.batch() as r:
            r.flows_event(value)

    def session(self, token: str) -> None:
        with self.batch() as r:
            r.session(token)

    def snapshot(self, days: int = 7, now: float | None = None, flows=None) -> dict:
        from metrics.snapshot import snapshot

        return snapshot(self.redis, days=days, now=now, flows=flows)


def init_app(app) -> None:
    app.extensions["metrics"] = Metrics(app.extensions["redis"])


# gunicorn.conf.py's hooks. They also run around the benchmark's pywa app (same settings file),
# which has no metrics: hence the lookups that tolerate their absence.
def buffer_in_this_process(app) -> None:
    """A web process, after the fork: sum metrics in memory and write them every
    METRICS_FLUSH_SECONDS (0 keeps writing each request through)."""
    metrics = getattr(app, "extensions", {}).get("metrics")
    if metrics is not None and app.config["METRICS_FLUSH_SECONDS"] > 0:
        metrics.buffered(app.config["METRICS_FLUSH_SECONDS"])


def flush_this_process(app) -> None:
    """A web process stopping gracefully: write what it still holds."""
    metrics = getattr(app, "extensions", {}).get("metrics")
    if metrics is not None and metrics.buffer is not None:
        metrics.buffer.stop()
