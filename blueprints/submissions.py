"""GET /api/submissions[/<id>]: completed Flows for the business's own systems.

Bearer token (``API_TOKEN``) compared in constant time; JSON errors: 401 without or with a wrong
token, 403 when no token is configured (the API is off), 404 for an unknown or expired id.
"""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from flows.submissions import SubmissionStore

bp = Blueprint("submissions", __name__, url_prefix="/api/submissions")
MAX_LIMIT = 500


@bp.before_request
def authenticate():
    expected = current_app.config["API_TOKEN"]
    if not expected:
        return jsonify(error="Forbidden", description="the API is disabled: API_TOKEN is not set"), 403
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        response = jsonify(error="Unauthorized", description="missing or wrong bearer token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="flowgate"'
        return response, 401
    return None


def _store() -> SubmissionStore:
    return SubmissionStore(current_app.extensions["redis"], current_app.config["SUBMISSION_RETENTION_SECONDS"])


@bp.get("")
def list_submissions():
    limit = request.args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return jsonify(error="Bad Request", description=f"limit must be 1..{MAX_LIMIT}"), 400
    items = _store().recent(int(limit))
    return jsonify(submissions=items, count=len(items))


@bp.get("/<sid>")
def get_submission(sid: str):
    document = _store().get(sid[:64])
    if document is None:
        return jsonify(error="Not Found", description="no such submission (or past retention)"), 404
    return jsonify(document)
