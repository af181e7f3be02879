"""The WhatsApp Business webhook envelope (protocol doc 7): from raw JSON to units of work.

Plain Python, no HTTP: the blueprint hands over the body, this module says what it holds — Flow
completions (``nfm_reply``), other inbound messages, delivery statuses, ``flows`` field events and
changes of a user's number or BSUID — each with the id that deduplicates it across Meta's retries
(and, for messages and statuses, the user it names: ``flows.identity``).

Per event, not per batch: one malformed message, status, change or entry (or one whose id or
sender is not valid text: a lone surrogate, ``"\\ud800"``) becomes a ``Reject``
holding that one event as a one-event envelope (kept as a dead letter, ``workers/deadletters.py``;
replaying it is parsing that envelope again), and the rest of the batch goes on. Only a body that
is not a WhatsApp Business Account envelope at all is an ``EnvelopeError`` (the 400).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from flows import identity

COMPLETION, INBOUND, STATUS, FLOW_EVENT = "completion", "inbound", "status", "flow_event"
# A user's number or BSUID changed (a ``system`` message, or a ``user_id_update`` change).
IDENTITY = "identity"
OBJECT = "whatsapp_business_account"


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


@dataclass(frozen=True)
class Reject:
    reason: str  # what is wrong, without values (it is logged and shown)
    event: dict  # the one event, in a body of its own that ``parse`` reads again on replay


@dataclass
class Parsed:
    items: list = field(default_factory=list)  # Items here; flows.wasender_events.Event there
    rejects: list[Reject] = field(default_factory=list)
    ignored: int = 0


def digest(text: str) -> str:
    # surrogatepass: an id is hashed whatever it holds (valid text hashes as plain UTF-8).
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


# A lone surrogate can only come from a JSON escape once the bytes were strict UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def load(raw: bytes):
    """The JSON in ``raw``, or EnvelopeError."""
    try:
        # Strict UTF-8 (Meta sends nothing else): json.loads(bytes) accepts encoded lone
        # surrogates, which then fail wherever the text is encoded again. UnicodeDecodeError is a
        # ValueError.
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise EnvelopeError("body is not JSON") from None


def may_hold_surrogates(raw: bytes) -> bool:
    """False when no string of ``raw`` can hold a lone surrogate (the usual case: nothing to clean)."""
    return bool(_SURROGATE_ESCAPE.search(raw))


def is_text(value) -> bool:
    """A non-empty string that can be written anywhere: what an id or a phone number must be.

    A lone surrogate (``"\\ud800"``) is valid JSON but not text: Redis, the logs and every encoder
    refuse it, and no cleaned form of it could name a message or a person.
    """
    return isinstance(value, str) and bool(value) and (value.isascii() or not _SURROGATE.search(value))


def as_number(value) -> float | None:
    """A number from an untrusted field (a timestamp, a Retry-After header or body field), or None:
    the one reader of such numbers (the Graph API, WASenderApi, the forward, the webhooks)."""
    try:
        number = float(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is None or math.isfinite(number) else None


def clean_strings(value):
    """``value`` with every lone surrogate replaced by U+FFFD, as a lenient decoder would: for
    the text and values of an event (its ids and phone numbers are checked with ``is_text``
    instead). Deterministic, so a redelivery is the same event. Dicts and lists are cleaned in
    place, without recursion (the body may be nested as deep as json allows).
    """
    if not isinstance(value, (dict, list)):
        return _clean(value) if isinstance(value, str) else value
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = _clean(item)
                elif isinstance(item, (dict, list)):
                    todo.append(item)
            continue
        for key in list(node):
            item = node[key]
            if isinstance(item, str):
                item = node[key] = _clean(item)
            elif isinstance(item, (dict, list)):
                todo.append(item)
            clean_key = _clean(key)
            if clean_key is not key:
                while clean_key in node:  # two keys alike once cleaned: both kept
                    clean_key += "\ufffd"
                node[clean_key] = node.pop(key)
    return value


def _clean(text: str) -> str:
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def parse(raw: bytes) -> Parsed:
    """Items to enqueue, events to dead-letter, count of ignored changes; or EnvelopeError."""
    body = load(raw)
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a JSON object")
    if body.get("object") != OBJECT:
        raise EnvelopeError("object is not whatsapp_business_account")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise EnvelopeError("entry is not a list")
    out = Parsed()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            out.rejects.append(Reject("entry without a changes list", {"object": OBJECT, "entry": [entry]}))
            continue
        head = {k: entry[k] for k in ("id", "time") if k in entry}
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str) \
                    or not isinstance(change.get("value"), dict):
                out.rejects.append(Reject("change without field and value", _one(head, change)))
            elif change["field"] == "messages":
                _messages(head, change["value"], out)
            elif change["field"] == "flows":
                _flow_event(head, change["value"], out)
            elif change["field"] == "user_id_update":
                out.items.extend(_id_updates(change["value"]))
            else:
                out.ignored += 1
    if may_hold_surrogates(raw):
        # What the jobs get: their text cleaned (the rejects keep the event exactly as it came).
        out.items = [Item(i.kind, i.dedupe, clean_strings(i.payload), clean_strings(i.phone_number_id),
                          clean_strings(i.extra)) for i in out.items]
    return out


def _one(head: dict, change) -> dict:
    """A body holding one change of one entry: what a dead letter keeps, and replays."""
    return {"object": OBJECT, "entry": [{**head, "changes": [change]}]}


# name in the value → (fields every element needs, as text (``is_text``); what one element is)
# The sender is ``from`` (the phone) or ``from_user_id`` (the BSUID: a username user may have no
# phone in the webhook at all), checked apart (``flows.identity``).
_LISTS = {"messages": (("id", "type"), "message"), "statuses": (("id", "status"), "status")}
_SENDER_FIELDS = ("from", "from_user_id")


def _messages(head: dict, value: dict, out: Parsed) -> None:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_id = metadata.get("phone_number_id") if isinstance(metadata.get("phone_number_id"), str) else None
    # What a dead letter keeps beside its one element: metadata, contacts (the sender's profile).
    base = {k: v for k, v in value.items() if k not in _LISTS}
    for name, (required, what) in _LISTS.items():
        if name not in value:
            continue
        elements = value[name]
        if not isinstance(elements, list):
            out.rejects.append(Reject(f"{name} is not a list", _one(head, {
                "field": "messages", "value": {**base, name: elements}})))
            continue
        for element in elements:
            reason = _problem(element, required, what)
            if reason:
                out.rejects.append(Reject(reason, _one(head, {
                    "field": "messages", "value": {**base, name: [element]}})))
            elif name == "messages":
                _message(head, base, element, phone_id, value, out)
            else:
                user = identity.from_status(value, element)
                # One wamid moves sent → delivered → read (or failed): each step is its own event.
                out.items.append(Item(STATUS, f"{element['id']}:{element['status']}", element, phone_id,
                                      extra={"user": user.to_dict()} if user else {}))


def _message(head: dict, base: dict, message: dict, phone_id, value: dict, out: Parsed) -> None:
    if message["type"] == "system":  # not the user writing: an identifier of theirs changed
        out.items.append(Item(IDENTITY, message["id"], message, phone_id))
        return
    unreadable = [k for k in _SENDER_FIELDS if isinstance(message.get(k), str) and message[k]
                  and not is_text(message[k])]
    user = None if unreadable else identity.from_message(value, message)
    if user is None:
        reason = (f"message with {', '.join(unreadable)} not valid text" if unreadable
                  else "message without a sender (from or from_user_id)")
        out.rejects.append(Reject(reason, _one(head, {"field": "messages",
                                                      "value": {**base, "messages": [message]}})))
        return
    kind = COMPLETION if is_completion(message) else INBOUND
    out.items.append(Item(kind, message["id"], message, phone_id, extra={"user": user.to_dict()}))


def _id_updates(value: dict) -> list[Item]:
    """``user_id_update`` (documented in March 2026; Meta later moved it to ``system`` messages):
    one item per entry, identified by what it says."""
    out = []
    for before, after in identity.identity_changes(value):
        change = {"before": before.to_dict(), "after": after.to_dict()}
        out.append(Item(IDENTITY, json.dumps(change, sort_keys=True), {"type": "user_id_update", **change}))
    return out


def _problem(element, required: tuple[str, ...], what: str) -> str | None:
    """What keeps ``element`` from being taken (no values in it), or None."""
    if not isinstance(element, dict):
        return f"{what} is not an object"
    missing = [k for k in required if not (isinstance(element.get(k), str) and element[k])]
    unreadable = [k for k in required if k not in missing and not is_text(element[k])]
    if missing:
        return f"{what} without {', '.join(missing)}"
    if unreadable:
        return f"{what} with {', '.join(unreadable)} not valid text"
    return None


def _flow_event(head: dict, value: dict, out: Parsed) -> None:
    if not isinstance(value.get("event"), str):
        out.rejects.append(Reject("flows change without an event",
                                  _one(head, {"field": "flows", "value": value})))
        return
    # No id on these: the canonical JSON of what Meta sent is the identity of the event.
    event_id = json.dumps({"entry": head.get("id"), "time": head.get("time"), "value": value}, sort_keys=True)
    out.items.append(Item(FLOW_EVENT, event_id, value, extra={"waba_id": str(head.get("id") or ""),
                                                              "time": head.get("time")}))


def is_completion(message: dict) -> bool:
    interactive = message.get("interactive")
    return (message.get("type") == "interactive" and isinstance(interactive, dict)
            and interactive.get("type") == "nfm_reply")
