"""/demo-api/…: the business APIs of the demo flows, served by the app itself for `make run`.

The flows call these over real HTTP like any external API (flows/lookups.py); production points
the lookup URLs elsewhere. Read-only seeded data, documented in the README's demo table. Shapes:
``GET /demo-api/<resource>?key=<key>`` (what the lookups call: the value stays out of the
path, so the access log never shows it) or ``GET /demo-api/<resource>/<key>`` (handy with curl) →
200 with a JSON object, or 404 ``{"error": "not found"}``.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, jsonify, request

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
