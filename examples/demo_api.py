"""/demo-api/…: the business APIs of the demo flows (DEMO_FLOWS: on in development, off in production).

The flows call these through the lookups' HTTP client like any external API (flows/lookups.py),
in-process (``transport`` below); ``/demo-api`` on this app is there for curl. Production points
the lookup URLs at the business's APIs. Read-only seeded data, documented in the README's demo table. Shapes:
``GET /demo-api/<resource>?key=<key>`` (what the lookups call: the value stays out of the
path, so the access log never shows it) or ``GET /demo-api/<resource>/<key>`` (handy with curl) →
200 with a JSON object, or 404 ``{"error": "not found"}``.
"""
from __future__ import annotations

import io
from datetime import date, timedelta
from urllib.parse import urlsplit

import requests
import urllib3
from flask import Blueprint, Flask, jsonify, request
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client

bp = Blueprint("demo_api", __name__, url_prefix="/demo-api")

MEMBERS = {
    "MEM123": {"name": "Ana Silva", "tier": "Gold", "status": "active"},
    "VIP999": {"name": "Victor Ito", "tier": "VIP", "status": "active"},
    "OLD777": {"name": "Olga Lind", "tier": "Silver", "status": "expired"},
}
COVERAGE = {
    "10001": "Manhattan, New York",
    "94105": "San Francisco",
    "60601": "Chicago Loop",
    "SW1A1AA": "Westminster, London",
}
COUPONS = {  # money in minor units (cents)
    "SAVE10": {"kind": "percent", "percent": 10, "min_subtotal_minor": 0, "active": True},
    "FIVEOFF": {"kind": "amount", "amount_minor": 500, "min_subtotal_minor": 3000, "active": True},
    "BIG50": {"kind": "percent", "percent": 50, "min_subtotal_minor": 20000, "active": True},
    "SUMMER23": {"kind": "percent", "percent": 20, "min_subtotal_minor": 0, "active": False},
}
INVENTORY = {
    "MUG-01": {"name": "Flowgate mug", "available": 25, "unit_price_minor": 1200, "currency": "USD"},
    "TEE-M": {"name": "T-shirt (M)", "available": 3, "unit_price_minor": 1990, "currency": "USD"},
    "POSTER": {"name": "Poster", "available": 40, "unit_price_minor": 850, "currency": "USD"},
    "SOLD-OUT": {"name": "Limited hoodie", "available": 0, "unit_price_minor": 4900, "currency": "USD"},
}
# Weekdays 09:00-12:00 and 14:00-17:00 in 30-minute slots; weekends closed.
OPENING = [f"{h:02d}:{m:02d}" for h in (9, 10, 11, 14, 15, 16) for m in (0, 30)]
CALENDAR_DAYS = 60


def _key(from_path: str | None) -> str:
    return from_path if from_path is not None else request.args.get("key", "")


def _found(body: dict):
    return jsonify(body)


def _missing():
    return jsonify(error="not found"), 404


@bp.get("/members", defaults={"member_id": None})
@bp.get("/members/<member_id>")
def member(member_id: str | None):
    member_id = _key(member_id)
    found = MEMBERS.get(member_id)
    return _found({"member_id": member_id, **found}) if found else _missing()


@bp.get("/coverage", defaults={"postal_code": None})
@bp.get("/coverage/<postal_code>")
def coverage(postal_code: str | None):
    postal_code = _key(postal_code)
    area = COVERAGE.get(postal_code)
    return _found({"postal_code": postal_code, "area": area}) if area else _missing()


@bp.get("/coupons", defaults={"code": None})
@bp.get("/coupons/<code>")
def coupon(code: str | None):
    code = _key(code)
    found = COUPONS.get(code)
    return _found({"code": code, **found}) if found else _missing()


@bp.get("/inventory", defaults={"sku": None})
@bp.get("/inventory/<sku>")
def inventory(sku: str | None):
    sku = _key(sku)
    found = INVENTORY.get(sku)
    return _found({"sku": sku, **found}) if found else _missing()


@bp.get("/calendar", defaults={"day": None})
@bp.get("/calendar/<day>")
def calendar(day: str | None):
    day = _key(day)
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return _missing()
    if not date.today() <= d <= date.today() + timedelta(days=CALENDAR_DAYS):
        return _missing()
    return _found({"date": day, "slots": [] if d.weekday() >= 5 else list(OPENING)})


# --- the lookups' way in: in-process, never through this app's own gunicorn -----------------------
# With DEMO_FLOWS and no lookup URL (development) every lookup goes to DEMO_BASE_URL, which the
# domain mounts to this transport: the demo backend answers from a tiny app of its own, called
# directly, so a lookup never waits for a gunicorn thread of the app it is serving.
DEMO_BASE_URL = "demo://api/demo-api"


class InProcessTransport(requests.adapters.BaseAdapter):
    """A requests transport answered by a WSGI app in this process: the lookups keep their whole
    HTTP path (status, headers, body limits, timeouts) without a socket."""

    def __init__(self, wsgi_app):
        super().__init__()
        self.wsgi_app = wsgi_app

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        answer = Client(self.wsgi_app).open(parts.path, method=request.method, query_string=parts.query,
                                           headers=dict(request.headers))
        body = answer.get_data()
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=dict(answer.headers),
                                            status=answer.status_code, preload_content=False)
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


def transport() -> InProcessTransport:
    demo = Flask("demo_api")
    demo.register_blueprint(bp)
    return InProcessTransport(demo)
