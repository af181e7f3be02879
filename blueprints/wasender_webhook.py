"""POST /webhooks/wasender: WASenderApi's webhooks (inbound messages, session status).

The signature header is the shared secret itself (not an HMAC), compared in constant time.
Inbound messages go to a worker (opt-out, conversation record); status events are recorded now;
an event we cannot take is kept as a dead letter (``workers.deadletters``), never failing the rest.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from flows.wasender_events import parse
from flows.webhook import EnvelopeError
from messaging.wasender import signature_ok
from workers.deadletters import WASENDER, DeadLetters
from workers.intake import accept_wasender
from flows.redact import redis_unavailable

bp = Blueprint("wasender_webhook", __name__)
log = logging.getLogger("flowgate.webhooks.wasender")
# WASender's events are small; the same ceiling as Meta's webhooks keeps a hostile body out of memory.
MAX_BODY_BYTES = 3 * 1024 * 1024


@bp.post("/webhooks/wasender")
def wasender_webhook():
    secret = current_app.config["WASENDER_WEBHOOK_SECRET"]
    header = request.headers.get("X-Webhook-Signature")
    if header is None:
        return jsonify(error="missing signature"), 401
    if not signature_ok(secret, header):
        return jsonify(error="bad signature"), 403
    request.max_content_length = MAX_BODY_BYTES
    raw = request.get_data(cache=False)  # raises 413 past the limit
    try:
        parsed = parse(raw)
    except EnvelopeError:
        log.warning("wasender webhook: not an event envelope (%d bytes)", len(raw))
        return jsonify(error="expected {event, data}"), 400
    redis = current_app.extensions["redis"]
    try:
        result = accept_wasender(redis, current_app.extensions["wasender"], parsed.items)
        kept = DeadLetters(redis).keep(WASENDER, parsed.rejects)
    except RedisError as exc:
        redis_unavailable(log, "wasender webhook", exc, "not stored, answering 503", level=logging.ERROR)
        return jsonify(error="storage unavailable"), 503
    answer = dict(ok=True, enqueued=result.enqueued, duplicates=result.duplicates, ignored=parsed.ignored)
    if kept.total:
        answer["dead_lettered"] = kept.total
    return jsonify(answer)
