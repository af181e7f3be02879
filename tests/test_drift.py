"""Drift between the Flow JSON Meta runs and the one served: requests from another version, screen or
payload are still answered, counted per flow, logged once per flow and hour across processes, and
shown by `flask flows status` with the fix. Through the real gunicorn with two workers."""
from __future__ import annotations

import pytest
import redis as redis_lib

from app import create_app
from conftest import APP_SECRET, served_settings, wait_for
from flows import drift
from examples import member_check
from flows.engine import UNKNOWN_STEP
from flows.protocol import FlowRequest
from devtools.simulator import FlowClient
from procs import Gunicorn
from test_flows_deploy import WABA_ID, flask, meta_settings


def drift_counts(redis, flow: str = "member_check") -> dict:
    from metrics.store import day_key, day_of
    import time

    fields = redis.hgetall(day_key(flow, day_of(time.time())))
    return {k.decode()[len("c|drift|"):]: int(v) for k, v in fields.items() if k.startswith(b"c|drift|")}


@pytest.mark.parametrize("payload, expected", [
    ({"action": "INIT", "version": "4.0"}, ()),
    ({"action": "INIT", "version": "3.0"}, ("version",)),
    ({"action": "data_exchange", "version": "4.0", "screen": "MEMBER_LOOKUP",
      "data": {"member_id": "M"}}, ()),
    ({"action": "data_exchange", "version": "4.0", "screen": "CONFIRM",
      "data": {"member_id": "M", "confirm": True}}, ()),
    ({"action": "data_exchange", "version": "4.0", "screen": "MEMBER_LOOKUP",
      "data": {"member_id": "M", "referral": "x"}}, ("data_key",)),
    ({"action": "data_exchange", "version": "3.0", "screen": "LOOKUP_V1", "data": {"id": "M"}},
     ("version", "screen")),
    ({"action": "BACK", "version": "4.0", "screen": "LOOKUP_V1"}, ("screen",)),
    ({"action": "ping", "version": "3.0"}, ()),
    ({"action": "data_exchange", "version": "3.0", "screen": "NOPE", "data": {"error": "x"}},
     ()),  # a notification
])
def test_what_counts_as_drift(payload, expected):
    assert drift.detect(member_check.flow, FlowRequest.parse(payload)) == expected


def test_drifting_requests_are_answered_counted_and_logged_once_across_processes(redis_url, keypair):
    redis = redis_lib.Redis.from_url(redis_url)
    server = Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=2,
                      FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"), WHATSAPP_APP_SECRET=APP_SECRET,
                      **served_settings())
    with server:
        client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        for i in range(6):  # an old publish: data API 3.0, its first screen renamed since
            assert client.init(f"old-{i}", version="3.0").screen == "MEMBER_LOOKUP"
            old = client.exchange(f"old-{i}", "LOOKUP_V1", {"id": "MEM123"}, version="3.0")
            assert (old.status == 200 and old.screen == "MEMBER_LOOKUP"
                    and old.data["error_message"] == UNKNOWN_STEP)
        extra = client.exchange("new-1", "MEMBER_LOOKUP", {"member_id": "MEM123", "referral": "x"},
                                version="4.0")
        assert extra.status == 200 and extra.screen == "CONFIRM"  # answered as well as this JSON allows
        assert client.init("new-2", version="4.0").screen == "MEMBER_LOOKUP"
        wait_for(lambda: drift_counts(redis) == {"version": 12, "screen": 6, "data_key": 1}, timeout=10,
                 message=f"drift counters (now {drift_counts(redis)})")
        assert 0 < redis.ttl("fg:drift:logged:member_check") <= drift.LOG_EVERY_SECONDS
    warnings = [line for line in server.output.splitlines() if "drift (" in line]
    assert len(warnings) == 1, server.output[-3000:]
    assert "flow=member_check" in warnings[0] and "flask flows deploy member_check" in warnings[0]
    assert "MEM123" not in server.output


def test_flows_status_shows_the_drift_with_its_fix(app_config, graph, redis_url):
    graph.meta_flows.add_waba(WABA_ID)
    app = create_app({**app_config, **meta_settings(graph)})
    assert flask(app, "deploy", "member_check").exit_code == 0
    with app.app_context():
        with app.extensions["metrics"].batch() as m:
            m.count("member_check", "drift", label="version").count("member_check", "drift", label="screen")
    result = flask(app, "status", "member_check")
    assert ("✗ drift: 2 requests from another Flow JSON than the one served (screen 1, version 1)"
            in result.output)
    assert "flask flows deploy member_check" in result.output
