"""GET /api/submissions[/<id>]: completed Flows for the business's own systems, from SQL.

Bearer token (``API_TOKEN``) compared in constant time. The list is newest first, ``limit`` at a
time, filtered by ``flow``, ``since`` / ``until`` (received; ISO 8601 or UNIX seconds) and
``user`` (a phone or a BSUID); ``next_cursor`` fetches the next page (``cursor=``), null on the
last. JSON errors: 400 naming a bad parameter (a cursor this API did not give out, a date that is
not one), 401 without or with a wrong token, 403 when no token is configured (the API is off),
404 for an unknown, erased or purged id, 503 when the database or Redis is unavailable
(``errors.py``).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from blueprints import auth, params
from blueprints.errors import BadParameter
from records.submissions import BadCursor, Filters

bp = Blueprint("submissions", __name__, url_prefix="/api/submissions")
bp.before_request(auth.require_api_token)
MAX_LIMIT = 500


def filters() -> Filters:
    """The list's filters from the query string (also the dashboard's CSV download)."""
    found = Filters(flow=params.text_arg("flow", 128), since=params.time_arg("since"),
                    until=params.time_arg("until"), user=params.text_arg("user", 256))
    if found.user:
        found.user = found.user.removeprefix("+")  # phones are kept as WhatsApp writes them: digits
    return found


@bp.get("")
def list_submissions():
    limit = params.int_arg("limit", 50, 1, MAX_LIMIT)
    chosen = filters()
    cursor = params.text_arg("cursor", 64)
    try:
        items, next_cursor = current_app.extensions["records"].submissions.page(limit, cursor, chosen)
    except BadCursor as exc:
        raise BadParameter("cursor", str(exc)) from None
    return jsonify(submissions=items, count=len(items), next_cursor=next_cursor)


@bp.get("/<sid>")
def get_submission(sid: str):
    document = current_app.extensions["records"].submissions.get(sid[:64]) if sid.isprintable() else None
    if document is None:
        return jsonify(error="Not Found",
                       description="no such submission (or erased, or past retention)"), 404
    return jsonify(document)
