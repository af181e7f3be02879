"""flask flows status: Meta's view of each flow (stand-in) beside Flowgate's own figures for the same
days, the dashboard's cached copy (never a call to Meta from the page), and a flow Meta throttles
or blocks shown in red at the top."""
from __future__ import annotations

import base64
import json
from datetime import date, datetime, timezone

import pytest

from app import create_app
from conftest import APP_SECRET, LiveServer
from devtools.simulator import FlowClient
from test_flows_deploy import WABA_ID, flask, meta_settings

PASSWORD = "dash-pass"


@pytest.fixture
def meta(graph):
    graph.meta_flows.add_waba(WABA_ID)
    return graph.meta_flows


@pytest.fixture
def status_app(app_config, graph, meta):
    return create_app({**app_config, **meta_settings(graph), "DASHBOARD_PASSWORD": PASSWORD})


def dashboard(app) -> str:
    auth = base64.b64encode(f"x:{PASSWORD}".encode()).decode()
    page = app.test_client().get("/dashboard", headers={"Authorization": f"Basic {auth}"})
    assert page.status_code == 200
    return page.get_data(as_text=True)


def play(app, keypair, flow: str, requests: list) -> None:
    """Real encrypted requests to the app's endpoint over loopback HTTP."""
    with LiveServer(app) as server:
        client = FlowClient(f"{server.url}/flows/{flow}", keypair[1], APP_SECRET)
        for method, *args in requests:
            assert getattr(client, method)(*args).status == 200


def test_status_sets_metas_view_beside_ours_for_the_same_days(status_app, graph, meta, keypair):
    assert flask(status_app, "deploy", "member_check", "--publish").exit_code == 0
    flow_id = meta.by_name("member_check")["id"]
    today = datetime.now(timezone.utc).date()
    meta.add_metrics(flow_id, today, 300, errors={"timeout_error": 4, "unexpected_http_status_code": 2},
                     latency={"1": 290, "3": 4, "10+": 6}, availability={"succeeded": 40, "failed": 2})
    play(status_app, keypair, "member_check", [("init", "t1", None, "4.0"),
                                                ("exchange", "t1", "MEMBER_LOOKUP",
                                                 {"member_id": "MEM123"}, "4.0")])

    result = flask(status_app, "status", "member_check", "--json", "--days", "3")
    assert result.exit_code == 0, result.output
    (doc,) = json.loads(result.output)["flows"]
    assert (doc["flow_id"] == flow_id and doc["status"] == "PUBLISHED"
            and doc["can_send_message"] == "AVAILABLE")
    assert doc["validation_errors"] == [] and doc["preview_url"].startswith("https://business.facebook.com/")
    assert doc["endpoint_uri"] == doc["expected_endpoint_uri"]
    assert doc["metrics"] == {"requests": 300, "errors": 6, "error_rate": 0.02,
                              "error_types": {"timeout_error": 4, "unexpected_http_status_code": 2},
                              "latency": {"1": 290, "3": 4, "10+": 6},
                              "availability": {"succeeded": 40, "failed": 2}}
    assert (doc["ours"]["requests"] == 2 and doc["ours"]["errors"] == 0
            and sum(doc["ours"]["latency"].values()) == 2)
    since = date.fromordinal(today.toordinal() - 2).isoformat()
    assert doc["window"] == {"since": since, "until": today.isoformat()}
    asked = {r.query for r in graph.matching("GET", f"/{flow_id}")}
    assert any("metric.name%28ENDPOINT_REQUEST_COUNT%29.granularity%28DAY%29"
               f".since%28{since}%29.until%28{today}%29"
               in q for q in asked), asked

    text = flask(status_app, "status", "member_check")
    assert f"member_check: Flow {flow_id} (member_check) PUBLISHED, health AVAILABLE" in text.output
    assert "300" in text.output and "6 (2.0%)" in text.output and "timeout_error 4" in text.output
    assert status_app.extensions["meta_status"].all()["member_check"]["metrics"]["requests"] == 300


def test_without_enough_requests_metas_metrics_are_said_unavailable(status_app, meta):
    assert flask(status_app, "deploy", "service_area").exit_code == 0
    result = flask(status_app, "status", "service_area")
    assert result.exit_code == 0, result.output
    assert "not enough data yet: Meta reports metrics from 250 requests" in result.output


def test_a_flow_not_on_meta_says_how_to_get_it_there(status_app, meta):
    result = flask(status_app, "status", "stock_order")
    assert result.exit_code == 1
    assert "stock_order: not on Meta — flask flows deploy stock_order" in result.output


def test_a_throttled_flow_is_red_at_the_top_of_the_dashboard_which_never_calls_meta(status_app, graph, meta):
    assert flask(status_app, "deploy", "--publish").exit_code == 0
    meta.by_name("coupon_checkout")["status"] = "THROTTLED"
    result = flask(status_app, "status")
    assert result.exit_code == 1
    assert "THROTTLED: Meta lets 10 messages of this Flow out an hour" in result.output

    calls = len(graph.requests)
    page = dashboard(status_app)
    assert len(graph.requests) == calls  # the page read Redis only
    banner = page.index('class="banner bad meta-unwell" role="alert" data-flow="coupon_checkout"')
    assert banner < page.index('id="meta"') < page.index('id="funnels"')
    rows = [page.index(f'class="meta-flow" data-flow="{n}"') for n in ("coupon_checkout", "appointment")]
    assert rows == sorted(rows)  # the throttled one first
    assert "coupon_checkout is THROTTLED on Meta" in page


def test_a_flows_status_webhook_updates_the_dashboards_copy(status_app, meta):
    from workers import inbound

    assert flask(status_app, "deploy", "--publish").exit_code == 0
    flow_id = meta.by_name("appointment")["id"]
    with status_app.app_context():
        inbound.record_flow_event({"event": "FLOW_STATUS_CHANGE", "flow_id": flow_id,
                                   "old_status": "PUBLISHED",
                                   "new_status": "BLOCKED", "message": "Flow status changed"})
    assert status_app.extensions["meta_status"].all()["appointment"]["status"] == "BLOCKED"
    assert 'data-flow="appointment"><strong>appointment is BLOCKED on Meta' in dashboard(status_app)
