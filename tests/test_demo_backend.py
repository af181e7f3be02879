"""The demo backend under /demo-api/, and `make run`'s path: no lookup configured, gunicorn on
$PORT, every flow's lookups calling the app's own /demo-api over real HTTP."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from conftest import APP_SECRET
from flows.catalog import CATALOG
from flows.player import Player
from flows.simulator import FlowClient
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


def test_every_demo_flow_completes_against_the_apps_own_demo_api(redis_url, keypair):
    assert set(DEMO_FIELDS) == {f.name for f in CATALOG}
    with Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=1, GUNICORN_THREADS=4,
                  FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"), WHATSAPP_APP_SECRET=APP_SECRET) as server:
        for flow in CATALOG:
            client = FlowClient(f"{server.url}/flows/{flow.name}", keypair[1], APP_SECRET)
            steps = list(Player(flow.definition, client, f"tok-demo-{flow.name}", DEMO_FIELDS[flow.name]).run())
            assert steps[-1].screen == "SUCCESS", (flow.name, [(s.screen, s.data, s.note) for s in steps])
    out = server.output
    assert "Traceback" not in out
    # The lookups reached /demo-api through gunicorn, whose access log is in ``out``: no form value.
    assert "/demo-api/members" in out
    for fields in DEMO_FIELDS.values():
        for name, value in fields.items():
            if name not in ("slot", "quantity"):  # "14:30" and "2" also occur in timestamps
                assert value not in out, name
