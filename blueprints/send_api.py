"""POST /api/flows/<flow_name>/send: send a Flow to a user (bearer API_TOKEN, JSON in and out)."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from workers.sending import issue_and_enqueue

bp = Blueprint("send_api", __name__, url_prefix="/api")


def _error(status: int, message: str):
    return jsonify(error=message), status


def authorised() -> bool:
    expected = current_app.config["API_TOKEN"]
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[len("Bearer "):].encode(), expected.encode())


@bp.post("/flows/<flow_name>/send")
def send_flow(flow_name: str):
    if not authorised():
        return _error(401, "missing or wrong bearer token")
    flow = current_app.extensions["flows"].get(flow_name)
    if flow is None:
        return _error(404, "unknown flow")
    body = request.get_json(silent=True)
    # "to": a phone number or a BSUID (a WhatsApp username user); "recipient" is taken for a BSUID too.
    to = body.get("to", body.get("recipient")) if isinstance(body, dict) else None
    if not isinstance(to, str):
        return _error(400, 'body must be JSON like {"to": "+15550001111" or "US.1349…", "data": {...}}')
    data = body.get("data", {})
    if not isinstance(data, dict):
        return _error(400, "data must be an object")
    try:
        result = issue_and_enqueue(current_app, flow, to, data)
    except ValueError as exc:
        return _error(400, str(exc))
    except RedisError:
        return _error(503, "storage unavailable, try again")
    return jsonify(result), 202
