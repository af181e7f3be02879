"""What happened lately: recent sessions with their timelines, the console outbox, WASender status.

Everything shown here is masked first: tokens shortened, phone numbers reduced to their last
digits, WhatsApp usernames and business-scoped user IDs likewise, message texts cut short.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from flows.identity import mask_bsuid, mask_phone, mask_text, of_session, shown
from flows.sessions import SessionStore, short
from messaging.console import OUTBOX as CONSOLE_OUTBOX_KEY  # the console channel owns it
from messaging.wasender import STATUS_KEY as WASENDER_STATUS_KEY
from metrics.store import RECENT_KEY
from records import DatabaseError

log = logging.getLogger("flowgate.dashboard")

# Redis list the development console channel pushes outgoing messages onto (newest first, JSON
# objects {"at", "to", "text", "channel"}); capped by the writer. The dashboard only reads it.
PHONE_FIELDS = ("phone", "wa_id", "to", "recipient")


def _when(ts) -> str:
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return ""


def recent_sessions(redis, limit: int = 20, records=None) -> list[dict]:
    tokens = [t.decode() if isinstance(t, bytes) else t for t in redis.zrevrange(RECENT_KEY, 0, limit - 1)]
    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.hgetall(SessionStore.key(token))
        pipe.lrange(SessionStore.key(token) + ":timeline", -12, -1)
    results = pipe.execute()
    rows = []
    for i, token in enumerate(tokens):
        raw, timeline = results[2 * i], results[2 * i + 1]
        if not raw:
            continue
        session = {k.decode(): v.decode() for k, v in raw.items()}
        # The user: masked phone and masked username (a username user may have no phone at all).
        user = (shown(of_session(session))
                or mask_phone(next((session[f] for f in PHONE_FIELDS if session.get(f)), "")))
        events = []
        for item in timeline:
            entry = json.loads(item)
            events.append({"at": _when(entry.get("at")), "event": entry.get("event", ""),
                           "detail": mask_text(str(entry.get("detail", "")))[:80]})
        rows.append({"token": short(token), "flow": session.get("flow", ""),
                     "state": session.get("state", ""), "screen": session.get("screen", ""),
                     "phone": user, "updated": _when(session.get("updated_at")),
                     "timeline": events, "full_token": token})
    sent = _messages(records, [r["full_token"] for r in rows])
    for row in rows:
        token = row.pop("full_token")
        row["messages"] = sent.get(token, []) if sent is not None else None
    return rows


def _messages(records, tokens: list[str]) -> dict | None:
    """The messages each session sent and their statuses, from the message log (SQL); None when
    the database cannot be read (the page says so and shows the rest)."""
    if records is None:
        return None
    try:
        found = records.messages.for_tokens(tokens)
    except DatabaseError as exc:
        log.warning("dashboard: records unavailable (%s)", type(exc).__name__)
        return None
    out = {}
    for token, messages in found.items():
        out[token] = [{"at": _when(m["sent_at"]), "channel": m["channel"], "kind": m["kind"] or "",
                       "template": m["template"] or "",
                       "statuses": [{"status": st["status"], "at": _when(st["at"]),
                                     "error_code": st["error_code"]} for st in m["statuses"]]}
                      for m in messages]
    return out


def console_outbox(redis, limit: int = 20) -> list[dict]:
    rows = []
    for item in redis.lrange(CONSOLE_OUTBOX_KEY, 0, limit - 1):
        try:
            entry = json.loads(item)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        body = entry.get("body") if isinstance(entry.get("body"), dict) else entry
        rows.append({"at": _when(entry.get("at")),
                     "to": (mask_phone(body.get("to")) if body.get("to")
                            else mask_bsuid(body.get("recipient"))),
                     "channel": str(body.get("type") or entry.get("channel", ""))[:20],
                     "text": _message_text(body)[:200]})
    return rows


def _message_text(body: dict) -> str:
    """What a person reads of a Cloud API message: its text, its body, or its template's name."""
    if isinstance(body.get("text"), dict):
        return str(body["text"].get("body", ""))
    if isinstance(body.get("interactive"), dict):
        return str((body["interactive"].get("body") or {}).get("text", ""))
    if isinstance(body.get("template"), dict):
        return f"[template {body['template'].get('name', '')}]"
    return str(body.get("text", ""))


def wasender_status(redis) -> str:
    value = redis.get(WASENDER_STATUS_KEY)
    return (value.decode() if isinstance(value, bytes) else value) or "unknown"
