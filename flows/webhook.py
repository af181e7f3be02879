"""The WhatsApp Business webhook envelope (protocol doc 7): from raw JSON to units of work.

Plain Python, no HTTP: the blueprint hands over the body, this module says what it holds — Flow
completions (``nfm_reply``), other inbound messages, delivery statuses, ``flows`` field events and
changes of a user's number or BSUID — each with the id that deduplicates it across Meta's retries
(and, for messages and statuses, the user it names: ``flows.identity``), or an ``EnvelopeError``
for the 400.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from flows import identity

COMPLETION, INBOUND, STATUS, FLOW_EVENT = "completion", "inbound", "status", "flow_event"
# A user's number or BSUID changed (a ``system`` message, or a ``user_id_update`` change).
IDENTITY = "identity"

# Fields Meta may send that we do not subscribe to for work: acknowledged, not enqueued.
IGNORED = "ignored"


class EnvelopeError(ValueError):
    """The body is not a webhook we understand; the text is the 400's reason (no values in it)."""


@dataclass(frozen=True)
class Item:
    kind: str  # completion | inbound | status | flow_event | identity
    dedupe: str  # stable across Meta's redeliveries of the same event
    payload: dict  # the message / status / event value, as Meta sent it
    phone_number_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        """RQ ids allow only letters, digits, ``_`` and ``-``; wamids carry ``.``, ``=``, ``/``."""
        return f"{self.kind}-{digest(self.dedupe)}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def parse(raw: bytes) -> tuple[list[Item], int]:
    """(items to enqueue, count of ignored changes) or EnvelopeError."""
    try:
        # Strict UTF-8 (Meta sends nothing else): json.loads(bytes) accepts encoded lone
        # surrogates, which then fail wherever the text is encoded again. UnicodeDecodeError is a
        # ValueError.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise EnvelopeError("body is not JSON") from None
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a JSON object")
    if body.get("object") != "whatsapp_business_account":
        raise EnvelopeError("object is not whatsapp_business_account")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise EnvelopeError("entry is not a list")
    items: list[Item] = []
    ignored = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            raise EnvelopeError("entry without a changes list")
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str) \
                    or not isinstance(change.get("value"), dict):
                raise EnvelopeError("change without field and value")
            if change["field"] == "messages":
                items.extend(_messages(change["value"]))
            elif change["field"] == "flows":
                items.append(_flow_event(entry, change["value"]))
            elif change["field"] == "user_id_update":
                items.extend(_id_updates(change["value"]))
            else:
                ignored += 1
    return items, ignored


def _messages(value: dict) -> list[Item]:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_id = metadata.get("phone_number_id") if isinstance(metadata.get("phone_number_id"), str) else None
    out = []
    for message in _list(value, "messages"):
        if not all(isinstance(message.get(k), str) and message.get(k) for k in ("id", "type")):
            raise EnvelopeError("message without id and type")
        if message["type"] == "system":  # not the user writing: an identifier of theirs changed
            out.append(Item(IDENTITY, message["id"], message, phone_id))
            continue
        # The sender: ``from`` (the phone) or ``from_user_id`` (the BSUID; a username user may
        # have no phone in the webhook at all), completed from ``contacts[]`` (flows.identity).
        user = identity.from_message(value, message)
        if user is None:
            raise EnvelopeError("message without a sender (from or from_user_id)")
        kind = COMPLETION if is_completion(message) else INBOUND
        out.append(Item(kind, message["id"], message, phone_id, extra={"user": user.to_dict()}))
    for status in _list(value, "statuses"):
        if not all(isinstance(status.get(k), str) and status.get(k) for k in ("id", "status")):
            raise EnvelopeError("status without id and status")
        user = identity.from_status(value, status)
        # One wamid moves sent → delivered → read (or failed): each step is its own event.
        out.append(Item(STATUS, f"{status['id']}:{status['status']}", status, phone_id,
                        extra={"user": user.to_dict()} if user else {}))
    return out


def _id_updates(value: dict) -> list[Item]:
    """``user_id_update`` (documented in March 2026; Meta later moved it to ``system`` messages):
    one item per entry, identified by what it says."""
    out = []
    for before, after in identity.identity_changes(value):
        change = {"before": before.to_dict(), "after": after.to_dict()}
        out.append(Item(IDENTITY, json.dumps(change, sort_keys=True), {"type": "user_id_update", **change}))
    return out


def _list(value: dict, name: str) -> list[dict]:
    items = value.get(name, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise EnvelopeError(f"{name} is not a list of objects")
    return items


def _flow_event(entry: dict, value: dict) -> Item:
    if not isinstance(value.get("event"), str):
        raise EnvelopeError("flows change without an event")
    # No id on these: the canonical JSON of what Meta sent is the identity of the event.
    identity = json.dumps({"entry": entry.get("id"), "time": entry.get("time"), "value": value},
                          sort_keys=True)
    return Item(FLOW_EVENT, identity, value, extra={"waba_id": str(entry.get("id") or ""),
                                                     "time": entry.get("time")})


def is_completion(message: dict) -> bool:
    interactive = message.get("interactive")
    return (message.get("type") == "interactive" and isinstance(interactive, dict)
            and interactive.get("type") == "nfm_reply")
