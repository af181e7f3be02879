"""GET /api/submissions[/<id>]: completed Flows for the business's own systems.

Bearer token (``API_TOKEN``) compared in constant time; JSON errors: 400 for a ``limit`` that is
not 1..500 in ASCII digits, 401 without or with a wrong token, 403 when no token is configured (the
API is off), 404 for an unknown or expired id, 503 when Redis is unavailable (``errors.py``).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from blueprints import auth, params
from stores.submissions import SubmissionStore

bp = Blueprint("submissions", __name__, url_prefix="/api/submissions")
bp.before_request(auth.require_api_token)
MAX_LIMIT = 500


def _store() -> SubmissionStore:
    return SubmissionStore(current_app.extensions["redis"],
                           current_app.config["SUBMISSION_RETENTION_SECONDS"])


@bp.get("")
def list_submissions():
    items = _store().recent(params.int_arg("limit", 50, 1, MAX_LIMIT))
    return jsonify(submissions=items, count=len(items))


@bp.get("/<sid>")
def get_submission(sid: str):
    document = _store().get(sid[:64])
    if document is None:
        return jsonify(error="Not Found", description="no such submission (or past retention)"), 404
    return jsonify(document)
