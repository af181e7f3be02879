"""The metrics arithmetic against a real Redis: buckets, percentiles, the 30-minute window,
Meta's thresholds, TTLs and caps."""
from __future__ import annotations

import random

import pytest

from metrics import Metrics
from metrics.latency import BUCKETS, OVERFLOW, Window, bucket_index
from metrics.snapshot import snapshot, top_validation_errors, window
from metrics.store import (DAY_TTL, FLOWS_EVENTS_KEY, FLOWS_EVENTS_MAX, MINUTE_TTL, RECENT_KEY,
                           RECENT_MAX, day_key, minute_key)

NOW = 1_790_000_000.0  # a fixed instant keeps minute and day boundaries deterministic


def record(redis, samples, now=NOW, flow="f", action="data_exchange", status=200):
    with Metrics(redis).batch(now=now) as m:
        for s in samples:
            m.endpoint(flow, action, s, status)


def test_bucket_bounds_are_inclusive_upper_limits():
    assert bucket_index(0.0) == 0
    assert BUCKETS[bucket_index(1.0)] == 1.0
    assert BUCKETS[bucket_index(1.0001)] == 1.5
    assert bucket_index(10.0) == OVERFLOW - 1
    assert bucket_index(12.0) == OVERFLOW


def test_quantiles_interpolate_inside_the_right_bucket():
    w = Window()
    for s in [0.04] * 90 + [6.0] * 10:
        w.counts[bucket_index(s)] += 1
    assert 0.03 < w.quantile(0.5) <= 0.04
    assert w.quantile(0.9) == pytest.approx(0.04)  # the 90th sample is the last of the 0.04 bucket
    assert 5.0 < w.quantile(0.99) <= 7.0
    assert Window().quantile(0.9) is None


def test_estimated_quantile_lies_in_the_bucket_of_the_true_one():
    rng = random.Random(7)
    samples = [rng.lognormvariate(-2.5, 1.2) for _ in range(5000)]
    w = Window()
    for s in samples:
        w.counts[bucket_index(s)] += 1
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.99):
        true = ordered[int(q * len(ordered)) - 1]
        assert bucket_index(w.quantile(q)) == bucket_index(true), q


@pytest.mark.parametrize("seconds", [0.0018, 0.003, 0.0065, 0.012, 0.045, 0.18, 0.9, 2.6, 6.2])
def test_quantiles_have_resolution_from_milliseconds_to_seconds(redis_client, seconds):
    # The old lowest bucket was 25 ms, so any fast endpoint read p50 12 / p90 22 / p99 25 ms.
    record(redis_client, [seconds] * 50 + [seconds * 1.1] * 50)
    summary = snapshot(redis_client, now=NOW)["flows"]["f"]["endpoint"]["data_exchange"]
    for name in ("p50", "p90", "p99"):
        assert seconds / 1.5 <= summary[name] <= seconds * 1.1 * 1.5, (name, summary[name])


def test_latency_memory_is_bounded_by_the_buckets_not_the_traffic(redis_client):
    rng = random.Random(3)
    record(redis_client, [rng.lognormvariate(-4, 2) for _ in range(5000)])
    # one field per bucket (+ overflow), the microsecond sum and the error count, whatever the traffic
    assert redis_client.hlen(minute_key(int(NOW // 60))) <= OVERFLOW + 1 + 2


@pytest.mark.parametrize("slow, seconds, level", [
    (10, 6.0, "ok"), (11, 1.0, "ok"), (11, 2.0, "alert"), (11, 6.0, "severe"), (11, 8.0, "critical")])
def test_p90_threshold_levels_are_exact_at_the_bounds(redis_client, slow, seconds, level):
    # 100 requests: (100 - slow) fast ones and `slow` taking `seconds`; p90 crosses a threshold
    # only once more than 10 % are above it, and a sample of exactly 1 s is not above 1 s.
    record(redis_client, [0.03] * (100 - slow) + [seconds] * slow)
    summary = snapshot(redis_client, now=NOW)["flows"]["f"]["endpoint"]["data_exchange"]
    assert summary["requests"] == 100
    assert summary["latency_level"] == level
    assert summary["error_level"] == "ok"


@pytest.mark.parametrize("errors, level", [(4, "ok"), (5, "alert"), (10, "severe"), (50, "critical")])
def test_error_rate_levels(redis_client, errors, level):
    record(redis_client, [0.02] * (100 - errors))
    record(redis_client, [0.02] * errors, status=500)
    summary = snapshot(redis_client, now=NOW)["flows"]["f"]["endpoint"]["data_exchange"]
    assert summary["error_rate"] == pytest.approx(errors / 100)
    assert summary["error_level"] == level


def test_427_is_an_answer_but_421_432_400_are_errors(redis_client):
    for status in (200, 427, 421, 432, 400):
        record(redis_client, [0.01], status=status)
    summary = snapshot(redis_client, now=NOW)["flows"]["f"]["endpoint"]["data_exchange"]
    assert (summary["requests"], summary["errors"]) == (5, 3)


def test_window_keeps_exactly_the_last_30_minutes(redis_client):
    record(redis_client, [0.01], now=NOW - 29 * 60)  # minute 29 ago: inside
    record(redis_client, [0.02, 0.02], now=NOW)  # this minute: inside
    record(redis_client, [9.0] * 50, now=NOW - 30 * 60)  # 30 minutes ago: outside
    w = window(redis_client, now=NOW)[("e", "f", "data_exchange")]
    assert w.n == 3
    assert w.latency_level == 0
    assert 0 < redis_client.ttl(minute_key(int(NOW // 60))) <= MINUTE_TTL


def test_counters_per_utc_day_with_ttl_and_funnel_structure(redis_client):
    m = Metrics(redis_client)
    with m.batch(now=NOW) as r:
        r.count("member_check", "opened", 3)
        r.count("member_check", "screen", label="MEMBER_LOOKUP")
        r.count("member_check", "screen", label="CONFIRM")
        r.count("member_check", "completed")
        r.count("member_check", "failed", label="client:timeout_error")
        r.count("member_check", "recovered", label=("wasender", "step2"))
        r.validation_failure("member_check", "member_id", "not_found")
        r.validation_failure("member_check", "member_id", "not_found")
        r.validation_failure("member_check", "email", "format")
    with m.batch(now=NOW - 86400) as r:  # yesterday
        r.count("member_check", "opened", 2)
    snap = m.snapshot(days=7, now=NOW)
    flow = snap["flows"]["member_check"]
    assert flow["today"]["counters"]["opened"] == 3
    assert flow["period"]["counters"]["opened"] == 5
    assert flow["period"]["screens"] == {"MEMBER_LOOKUP": 1, "CONFIRM": 1}
    assert flow["period"]["failed_by"] == {"client:timeout_error": 1}
    assert flow["period"]["recovered_by"] == {"wasender:step2": 1}
    assert [d["opened"] for d in flow["days"][:2]] == [3, 2]
    assert top_validation_errors(snap)[0] == {"flow": "member_check", "field": "member_id",
                                              "check": "not_found", "count": 2}
    ttl = redis_client.ttl(day_key("member_check", flow["days"][0]["day"]))
    assert DAY_TTL - 60 < ttl <= DAY_TTL


def test_labels_cannot_break_the_key_layout(redis_client):
    m = Metrics(redis_client)
    m.count("f", "failed", label="a|b c\nd")
    assert m.snapshot(now=None)["flows"]["f"]["period"]["failed_by"] == {"a_b_c_d": 1}


def test_lookups_count_outcomes_and_latency(redis_client):
    with Metrics(redis_client).batch(now=NOW) as m:
        m.lookup("f", "members", "hit", 0.02)
        m.lookup("f", "members", "timeout", 2.5)
        m.lookup("f", "members", "breaker_open", 0.0)
    flow = snapshot(redis_client, now=NOW)["flows"]["f"]
    assert flow["period"]["lookups"] == {"members": {"hit": 1, "timeout": 1, "breaker_open": 1}}
    assert flow["lookup_latency"]["members"]["errors"] == 2


def test_lists_are_capped(redis_client):
    m = Metrics(redis_client)
    with m.batch() as r:
        for i in range(FLOWS_EVENTS_MAX + 20):
            r.flows_event({"event": "ENDPOINT_LATENCY", "alert_state": "ACTIVATED", "p90_latency": i,
                           "secret_field": "dropped"})
        for i in range(RECENT_MAX + 30):
            r.session(f"tok{i}")
    assert redis_client.llen(FLOWS_EVENTS_KEY) == FLOWS_EVENTS_MAX
    assert redis_client.zcard(RECENT_KEY) == RECENT_MAX
    newest = m.snapshot()["flows_events"][0]
    assert newest["p90_latency"] == FLOWS_EVENTS_MAX + 19 and "secret_field" not in newest
