"""The demo backend under /demo-api/ (DEMO_FLOWS), and `make run`'s path: no lookup configured,
the demo lookups answered in-process, never through the app's own gunicorn."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

import config
from app import create_app
from conftest import APP_SECRET, LiveServer
from examples import FLOWS as DEMO
from devtools.player import Player
from devtools.simulator import FlowClient
from procs import Gunicorn


@pytest.mark.parametrize("path, status, field", [
    ("/demo-api/members/MEM123", 200, "name"), ("/demo-api/members/OLD777", 200, "status"),
    ("/demo-api/members/NOPE", 404, "error"), ("/demo-api/members?key=VIP999", 200, "tier"),
    ("/demo-api/members", 404, "error"), ("/demo-api/coverage/10001", 200, "area"),
    ("/demo-api/coupons/SUMMER23", 200, "active"), ("/demo-api/inventory/SOLD-OUT", 200, "available"),
    ("/demo-api/calendar/not-a-date", 404, "error"), ("/demo-api/calendar/2001-01-01", 404, "error"),
])
def test_demo_api_shapes(client, path, status, field):
    resp = client.get(path)
    assert resp.status_code == status and field in resp.get_json()


def _weekday() -> str:
    d = date.today() + timedelta(days=3)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d.isoformat()


DEMO_FIELDS = {
    "member_check": {"member_id": "VIP999"},
    "service_area": {"postal_code": "94105", "name": "Ana Silva", "email": "ana@example.com",
                     "phone": "+1 415 555 0100"},
    "coupon_checkout": {"coupon": "SAVE10"},
    "stock_order": {"sku": "MUG-01", "quantity": "2"},
    "appointment": {"date": _weekday(), "slot": "14:30"},
}


def test_make_runs_lookups_never_call_the_app_itself(redis_url, keypair, tmp_path):
    """Development with no lookup URL (make run): every demo flow completes on gunicorn with ONE
    worker and ONE thread. A lookup that called this app's own /demo-api would wait for that
    thread, time out and answer "we can't check this right now"; the demo backend answers
    in-process instead, so the access log shows no /demo-api request at all."""
    assert set(DEMO_FIELDS) == {f.name for f in DEMO}
    with Gunicorn(APP_ENV="development", REDIS_URL=redis_url, WEB_CONCURRENCY=1, GUNICORN_THREADS=1,
                  FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"), WHATSAPP_APP_SECRET=APP_SECRET,
                  FLOWGATE_INSTANCE_DIR=tmp_path) as server:
        for flow in DEMO:
            client = FlowClient(f"{server.url}/flows/{flow.name}", keypair[1], APP_SECRET)
            steps = list(Player(flow.definition, client, f"tok-demo-{flow.name}",
                                DEMO_FIELDS[flow.name]).run())
            assert steps[-1].screen == "SUCCESS", (flow.name, [(s.screen, s.data, s.note) for s in steps])
    out = server.output
    assert "Traceback" not in out
    assert 'path="/flows/member_check"' in out  # the access log is there...
    assert "/demo-api" not in out  # ...and no lookup went through this gunicorn
    for fields in DEMO_FIELDS.values():
        for name, value in fields.items():
            if name not in ("slot", "quantity"):  # "14:30" and "2" also occur in timestamps
                assert value not in out, name


def test_demo_flows_and_backend_are_off_in_production_by_default(app_config, keypair):
    cfg = {**app_config}
    del cfg["DEMO_FLOWS"]  # production's default
    app = create_app(cfg)
    client = app.test_client()
    assert app.extensions["flows"].names() == []
    assert client.get("/demo-api/members/MEM123").status_code == 404
    with LiveServer(app) as server:
        reply = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET).ping()
    assert reply.status == 404


def test_demo_flows_default_by_environment():
    assert config.demo_flows(config.load({})) is False
    assert config.demo_flows(config.load({"APP_ENV": "development"})) is True
    assert config.demo_flows(config.load({"APP_ENV": "development", "DEMO_FLOWS": "false"})) is False
    assert config.demo_flows(config.load({"DEMO_FLOWS": "true"})) is True
