"""WASenderApi's webhook body: from raw JSON to the messages and session statuses it carries.

The same rule as the Cloud API's (``flows/webhook.py``): per event, not per body. A message we
cannot take (no key id, no sender, either not valid text, a LID with no phone number) is a
``Reject`` holding that one message as a body of its own, kept as a dead letter and parsed again
on replay; the rest goes on.
Only a body that is not an ``{event, data}`` object at all is an ``EnvelopeError`` (the 400).
"""
from __future__ import annotations

from dataclasses import dataclass

from flows.identity import normalise_phone as normalise
from flows.webhook import EnvelopeError, Parsed, Reject, clean_strings, is_text, load

MESSAGE_EVENTS = ("messages.upsert", "messages.received", "messages-personal.received")
STATUS_EVENT = "session.status"
INBOUND, SESSION_STATUS = "wasender_inbound", "wasender_status"


@dataclass(frozen=True)
class Event:
    kind: str  # wasender_inbound | wasender_status
    payload: dict  # inbound: {"id", "wa_id", "text"}; status: {"status"}


def parse(raw: bytes) -> Parsed:
    """Events to take, events to dead-letter, count of ignored ones; or EnvelopeError."""
    body = load(raw)
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise EnvelopeError("expected {event, data}")
    out = Parsed()
    event, data = body["event"], body.get("data")
    head = {k: v for k, v in body.items() if k != "data"}
    if event == STATUS_EVENT:
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            out.items.append(Event(SESSION_STATUS, {"status": clean_strings(data["status"][:40])}))
        else:
            out.rejects.append(Reject("session.status without a status", body))
    elif event in MESSAGE_EVENTS:
        _messages(head, data, out)
    else:
        out.ignored += 1
    return out


def _messages(head: dict, data, out: Parsed) -> None:
    """messages.upsert carries one message or a list; keep the ones the user sent."""
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        out.rejects.append(Reject("messages event without messages", {**head, "data": data}))
        return
    base = {k: v for k, v in data.items() if k != "messages"}
    for m in messages:
        taken = _message(m)
        if isinstance(taken, str):
            out.rejects.append(Reject(taken, {**head, "data": {**base, "messages": [m]}}))
        elif taken is None:
            out.ignored += 1
        else:
            out.items.append(Event(INBOUND, taken))


def _message(m) -> dict | str | None:
    """The message to take, None for one that is not for us, or what is wrong with it."""
    key = m.get("key") if isinstance(m, dict) else None
    if not isinstance(key, dict):
        return "message without a key"
    if key.get("fromMe"):
        return None  # our own message, echoed back
    phone = key.get("cleanedSenderPn") or key.get("senderPn") or key.get("remoteJid") or ""
    if isinstance(phone, str) and phone.endswith("@g.us"):
        return None  # a group: not a conversation with one user
    key_id = key.get("id")
    if not (is_text(key_id) or (isinstance(key_id, int) and not isinstance(key_id, bool))):
        return "message without key.id (or not valid text)"
    if not is_text(phone):
        return "message without a sender (or not valid text)"
    if phone.endswith("@lid"):
        # A user known by a LID, with no phone number: kept until sessions can be matched on it.
        return "sender is a LID (no phone number)"
    wa_id = normalise(phone)
    if not wa_id:
        return "message without a sender"
    text = m.get("messageBody") or message_text(m.get("message")) or ""
    return {"id": str(key_id), "wa_id": wa_id, "text": clean_strings(str(text)[:4096])}


def message_text(message) -> str:
    """A reply, or a text with a link, is an ``extendedTextMessage`` (WASender's receiving guide:
    read ``extendedTextMessage.text`` first, then ``conversation``). Any JSON type may come."""
    if not isinstance(message, dict):
        return ""
    extended = message.get("extendedTextMessage")
    text = extended.get("text") if isinstance(extended, dict) else None
    return text if isinstance(text, str) and text else str(message.get("conversation") or "")
