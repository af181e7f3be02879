"""GET /metrics: a prometheus_client Collector that reads the Redis-held metrics at scrape time.

No per-process counters: every gunicorn worker and RQ worker writes to Redis, so whichever
process answers the scrape reports the same shared numbers. All-time totals are exported as
counters and histograms (``rate()`` works on them); the 30-minute window figures Meta alerts on
are gauges.
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from workers import jobs
from dashboard.activity import wasender_status
from metrics.latency import BUCKETS, OVERFLOW, parse_fields
from metrics.snapshot import flow_names, totals, window
from metrics.store import total_key


class RedisCollector(Collector):
    def __init__(self, redis):
        self.redis = redis

    def describe(self):
        return []  # the metric set depends on what Redis holds; let every scrape decide

    def collect(self):
        flows = flow_names(self.redis)
        counters, latency_totals = totals(self.redis, flows)
        yield from _counters(counters)
        yield from _histograms(latency_totals)
        yield from _window(window(self.redis))
        yield from _queues(jobs.queue_figures(self.redis))
        alerts = CounterMetricFamily("flowgate_flows_webhook_events", "`flows` webhook alerts and status "
                                     "changes received", labels=["event"])
        for event, value in sorted(self.redis.hgetall(total_key("_alerts")).items()):
            alerts.add_metric([event.decode()], int(value))
        yield alerts
        status = GaugeMetricFamily("flowgate_wasender_session", "WASenderApi session status (cached)",
                                   labels=["status"])
        status.add_metric([wasender_status(self.redis)], 1)
        yield status


def build_registry(redis) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(redis))
    return registry


def _counters(counters: dict):
    events = CounterMetricFamily("flowgate_flow_events", "Flow funnel and outcome events",
                                 labels=["flow", "event", "label"])
    validation = CounterMetricFamily("flowgate_validation_failures", "Validation failures",
                                     labels=["flow", "field", "check"])
    lookups = CounterMetricFamily("flowgate_lookups", "Lookup outcomes", labels=["flow", "lookup", "outcome"])
    for flow, fields in sorted(counters.items()):
        for key, value in sorted(fields.items()):
            parts = key.split("|")
            if parts[0] == "c" and len(parts) in (2, 3):
                events.add_metric([flow, parts[1], parts[2] if len(parts) == 3 else ""], value)
            elif parts[0] == "v" and len(parts) == 3:
                validation.add_metric([flow, parts[1], parts[2]], value)
            elif parts[0] == "l" and len(parts) == 3:
                lookups.add_metric([flow, parts[1], parts[2]], value)
    yield from (events, validation, lookups)


def _histograms(fields: dict):
    endpoint = HistogramMetricFamily("flowgate_endpoint_request_duration_seconds",
                                     "Flow endpoint request latency", labels=["flow", "action"])
    lookup = HistogramMetricFamily("flowgate_lookup_duration_seconds", "Lookup latency",
                                   labels=["flow", "lookup"])
    errors = CounterMetricFamily("flowgate_endpoint_errors", "Endpoint answers Meta counts as errors",
                                 labels=["flow", "action"])
    responses = CounterMetricFamily("flowgate_endpoint_responses", "Endpoint answers by HTTP status",
                                    labels=["flow", "action", "status"])
    for key, value in sorted(fields.items()):
        parts = key.split("|")
        if len(parts) == 4 and parts[0] == "e" and parts[3].startswith("s"):
            responses.add_metric([parts[1], parts[2], parts[3][1:]], value)
    for (kind, flow, name), w in sorted(parse_fields(fields, {}).items()):
        cumulative, buckets = 0, []
        for i, bound in enumerate(BUCKETS):
            cumulative += w.counts[i]
            buckets.append((_le(bound), cumulative))
        buckets.append(("+Inf", cumulative + w.counts[OVERFLOW]))
        family = endpoint if kind == "e" else lookup
        family.add_metric([flow, name], buckets, sum_value=w.seconds)
        if kind == "e":
            errors.add_metric([flow, name], w.errors)
    yield from (endpoint, lookup, errors, responses)


def _window(windows: dict):
    latency = GaugeMetricFamily("flowgate_endpoint_latency_30m_seconds",
                                "Endpoint latency quantiles over the last 30 minutes",
                                labels=["flow", "action", "quantile"])
    error_rate = GaugeMetricFamily("flowgate_endpoint_error_rate_30m",
                                   "Endpoint error rate over the last 30 minutes (Meta: 5/10/50 %)",
                                   labels=["flow", "action"])
    level = GaugeMetricFamily("flowgate_endpoint_meta_alert_level",
                              "How many of Meta's thresholds are crossed (0-3), latency or errors",
                              labels=["flow", "action"])
    for (kind, flow, name), w in sorted(windows.items()):
        if kind != "e" or not w.n:
            continue
        for q in (0.5, 0.9, 0.99):
            latency.add_metric([flow, name, str(q)], w.quantile(q))
        error_rate.add_metric([flow, name], w.error_rate)
        level.add_metric([flow, name], max(w.latency_level, w.error_level))
    yield from (latency, error_rate, level)


def _queues(rows: list):
    depth = GaugeMetricFamily("flowgate_queue_depth", "Jobs waiting", labels=["queue"])
    failed = GaugeMetricFamily("flowgate_queue_failed_jobs", "Jobs in the failed registry", labels=["queue"])
    oldest = GaugeMetricFamily("flowgate_queue_oldest_job_age_seconds", "Age of the oldest waiting job",
                               labels=["queue"])
    for row in rows:
        depth.add_metric([row["queue"]], row["depth"])
        failed.add_metric([row["queue"]], row["failed"])
        oldest.add_metric([row["queue"]], row["oldest_age_seconds"] or 0.0)
    yield from (depth, failed, oldest)


def _le(bound: float) -> str:
    return repr(float(bound))
