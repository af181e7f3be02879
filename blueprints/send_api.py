"""POST /api/flows/<flow_name>/send: send a Flow to a user (bearer API_TOKEN, JSON in and out).

| status | when |
| 202 | session issued, delivery queued: ``{"flow_token", "flow", "state"}`` |
| 400 | body not a JSON object (or nested too deep); ``to`` not a phone number or a BSUID; |
|     | ``data`` not an object |
| 401 / 403 | bearer token missing or wrong / API_TOKEN not set (the API is off) |
| 404 | unknown flow |
| 503 | Redis unavailable (``errors.py``) |
"""
from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify

from blueprints import auth, params
from blueprints.errors import BadParameter
from flows.identity import BSUID
from workers.sending import issue_and_enqueue

bp = Blueprint("send_api", __name__, url_prefix="/api")
bp.before_request(auth.require_api_token)
# ASCII only: Python's \d (and so flows.identity.normalise_phone) also takes Arabic-Indic digits.
PHONE = re.compile(r"\+?[0-9][0-9 ().-]{4,30}", re.ASCII)


@bp.post("/flows/<flow_name>/send")
def send_flow(flow_name: str):
    flow = current_app.extensions["flows"].get(flow_name)
    if flow is None:
        return jsonify(error="Not Found", description="unknown flow"), 404
    body = params.json_object()
    # "to": a phone number or a BSUID (a WhatsApp username user); "recipient" is taken for a BSUID too.
    field = "to" if "to" in body or "recipient" not in body else "recipient"
    to = params.string_field(body, field, max_length=160)
    if not (BSUID.fullmatch(to) or (PHONE.fullmatch(to) and 6 <= sum(c.isdigit() for c in to) <= 15)):
        raise BadParameter(field, 'to must be a phone number in international form (6 to 15 digits), '
                                  'like "+15550001111", or a business-scoped user ID like "US.1349…"')
    data = params.object_field(body, "data")
    try:
        return jsonify(issue_and_enqueue(current_app, flow, to, data)), 202
    except ValueError as exc:
        raise BadParameter(field, str(exc)) from None
