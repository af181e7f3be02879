"""POST /webhooks/wasender: WASenderApi's webhooks (inbound messages, session status).

The signature header is the shared secret itself (not an HMAC), compared in constant time.
Inbound messages go to a worker (opt-out, conversation record); status events are recorded now.
"""
from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from flows.contacts import normalise
from messaging.wasender import signature_ok
from workers.queues import HIGH, enqueue_once

bp = Blueprint("wasender_webhook", __name__)
log = logging.getLogger("flowgate.webhooks.wasender")
# WASender's events are small; the same ceiling as Meta's webhooks keeps a hostile body out of memory.
MAX_BODY_BYTES = 3 * 1024 * 1024


def inbound_messages(data) -> list[dict]:
    """messages.upsert carries one message or a list; keep the ones the user sent."""
    messages = data.get("messages") if isinstance(data, dict) else None
    messages = messages if isinstance(messages, list) else [messages] if isinstance(messages, dict) else []
    out = []
    for m in messages:
        key = m.get("key") if isinstance(m, dict) else None
        if not isinstance(key, dict) or key.get("fromMe") or not key.get("id"):
            continue
        phone = key.get("cleanedSenderPn") or key.get("senderPn") or key.get("remoteJid") or ""
        if not isinstance(phone, str) or phone.endswith("@lid") or phone.endswith("@g.us"):
            continue  # a LID or a group: no phone number to match a session with
        text = m.get("messageBody") or message_text(m.get("message")) or ""
        out.append({"id": str(key["id"]), "wa_id": normalise(phone), "text": str(text)[:4096]})
    return out


def message_text(message) -> str:
    """A reply, or a text with a link, is an ``extendedTextMessage`` (WASender's receiving guide:
    read ``extendedTextMessage.text`` first, then ``conversation``). Any JSON type may come."""
    if not isinstance(message, dict):
        return ""
    extended = message.get("extendedTextMessage")
    text = extended.get("text") if isinstance(extended, dict) else None
    return text if isinstance(text, str) and text else str(message.get("conversation") or "")


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
        # Strict UTF-8 first: json.loads(bytes) lets encoded lone surrogates through (hypothesis
        # found b"\xed\xa0\x80"). UnicodeDecodeError is a ValueError.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # get_json(silent=True) let deep nesting through as a 500
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        log.warning("wasender webhook: not an event envelope")
        return jsonify(error="expected {event, data}"), 400
    event, data = body["event"], body.get("data")
    redis = current_app.extensions["redis"]
    try:
        if event == "session.status" and isinstance(data, dict) and isinstance(data.get("status"), str):
            current_app.extensions["wasender"].record_status(data["status"][:40])
        elif event in ("messages.upsert", "messages.received", "messages-personal.received"):
            for m in inbound_messages(data):
                digest = hashlib.sha256(m["id"].encode()).hexdigest()[:32]
                # A repeated delivery of a message already taken is not queued again.
                enqueue_once(redis, "workers.conversation.wasender_inbound", m["wa_id"], m["text"], m["id"],
                             queue_name=HIGH, job_id=f"wsin-{digest}")
    except RedisError:
        return jsonify(error="storage unavailable"), 503
    return jsonify(ok=True)
