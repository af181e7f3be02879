"""GET|POST /webhooks/whatsapp: Meta's verification handshake and the signed event stream.

Thin on purpose: check, parse (``flows.webhook``), store as jobs (``workers.intake``) or, for an
event we cannot take, as a dead letter (``workers.deadletters``), answer. A 200 means every event
of the body is safely in Redis; anything else makes Meta redeliver (7 days) — so one malformed
event must never fail the batch it came in.

| status | when |
| 200 | GET handshake; POST: every event stored as a job or a dead letter (or was already) |
| 400 | body not JSON / not a WhatsApp Business Account envelope at all |
| 401 / 403 | X-Hub-Signature-256 absent / wrong; GET with a wrong verify token |
| 413 | body over 3 MB (Meta's limit) |
| 503 | Redis could not take the events |
"""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from flows.signing import HEADER
from flows.webhook import EnvelopeError, parse
from workers.deadletters import CLOUD, DeadLetters
from workers.intake import accept
from workers.queues import retry_from
from flows.redact import redis_unavailable

bp = Blueprint("webhooks", __name__)
# Meta's webhook payloads are at most 3 MB (protocol doc 5.1). Set per request: Flask's default
# config already holds MAX_CONTENT_LENGTH=None, so app.py's setdefault does not apply a limit.
MAX_BODY_BYTES = 3 * 1024 * 1024
log = logging.getLogger("flowgate.webhooks")


@bp.get("/webhooks/whatsapp")
def verify():
    expected = current_app.config["WHATSAPP_VERIFY_TOKEN"]
    given = request.args.get("hub.verify_token", "")
    if (request.args.get("hub.mode") == "subscribe" and expected
            and hmac.compare_digest(given.encode(), expected.encode())):
        return Response(request.args.get("hub.challenge", ""), status=200, mimetype="text/plain")
    log.warning("webhook verification refused (mode=%s)", request.args.get("hub.mode", "-")[:20])
    return Response("", status=403, mimetype="text/plain")


@bp.post("/webhooks/whatsapp")
def receive():
    request.max_content_length = MAX_BODY_BYTES
    raw = request.get_data(cache=False)  # raises 413 past the limit
    verifier = current_app.extensions["verifier"]
    if verifier.enabled:
        header = request.headers.get(HEADER)
        if not header:
            log.warning("webhook without %s", HEADER)
            return jsonify(error="signature missing"), 401
        if not verifier.check(header, raw):
            log.warning("webhook signature mismatch (%d bytes)", len(raw))
            return jsonify(error="signature mismatch"), 403
    try:
        parsed = parse(raw)
    except EnvelopeError as exc:
        log.warning("webhook refused: %s (%d bytes)", exc, len(raw))
        return jsonify(error="bad webhook", description=str(exc)), 400
    cfg, redis = current_app.config, current_app.extensions["redis"]
    try:
        result = accept(redis, parsed.items, retry_from(cfg), cfg["WEBHOOK_DEDUPE_SECONDS"])
        kept = DeadLetters(redis).keep(CLOUD, parsed.rejects)
    except RedisError as exc:
        redis_unavailable(log, "webhook", exc, "not stored, answering 503 so Meta redelivers",
                          level=logging.ERROR)
        return jsonify(error="storage unavailable"), 503
    answer = dict(enqueued=result.enqueued, duplicates=result.duplicates, ignored=parsed.ignored)
    if kept.total:
        answer["dead_lettered"] = kept.total  # kept now or by an earlier delivery of this batch
    return jsonify(answer), 200
