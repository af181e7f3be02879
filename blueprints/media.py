"""GET /media/<id>?exp=&sig=: files the channels fetch by link (a PDF receipt).

| status | when |
| 200 | signature right, not expired: the file, with its type and name |
| 400 | ``exp`` missing or not a number, ``sig`` missing |
| 403 | signature wrong (a forged or altered link) |
| 404 | not an id of ours, or the file is gone |
| 410 | the link has expired |
| 503 | Redis unavailable |
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from messaging.media import BAD, EXPIRED, ID_PATTERN

bp = Blueprint("media", __name__)
log = logging.getLogger("flowgate.media")


@bp.get("/media/<media_id>")
def media(media_id: str):
    if not ID_PATTERN.match(media_id):
        return jsonify(error="not found"), 404
    exp, sig = request.args.get("exp", ""), request.args.get("sig", "")
    if not (exp.isascii() and exp.isdigit()) or len(exp) > 12 or not sig:
        return jsonify(error="exp and sig are required"), 400
    store = current_app.extensions["media"]
    verdict = store.check(media_id, int(exp), sig[:128])
    if verdict == BAD:
        log.warning("media %s…: bad signature", media_id[:8])
        return jsonify(error="bad signature"), 403
    if verdict == EXPIRED:
        return jsonify(error="link expired"), 410
    try:
        found = store.get(media_id)
    except RedisError:
        return jsonify(error="storage unavailable"), 503
    if found is None:
        return jsonify(error="not found"), 404
    content, content_type, file_name = found
    return Response(content, mimetype=content_type, headers={
        "Content-Disposition": f'inline; filename="{file_name}"',
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
