"""Webhook bodies as Meta sends them (protocol doc 7.1, 5.3), and a signed POST helper."""
from __future__ import annotations

import itertools
import json

from flows.signing import HEADER, sign

PHONE_NUMBER_ID = "106540352242922"
USER = "16505551234"
_ids = itertools.count(1)


def new_wamid() -> str:
    # Real wamids are base64 with "=", "/" and "+": job ids must survive them.
    return f"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQz+/{next(_ids):06d}AA=="


def envelope(*changes) -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": list(changes)}]}


def messages_change(messages=(), statuses=(), contacts=None) -> dict:
    """``contacts``: the ``contacts`` array (default: one user known by phone; ``[]``: none, as in a
    ``failed`` status)."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
             "contacts": ([{"profile": {"name": "Jane"}, "wa_id": USER}] if contacts is None
                          else list(contacts))}
    if not value["contacts"]:
        del value["contacts"]
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"field": "messages", "value": value}


def completion(wamid: str | None = None, token: str | None = "fg_token", values: dict | None = None,
               context_id: str | None = "wamid.flow-message", response_json: str | None = None,
               user: str = USER) -> dict:
    params = dict(values or {"member_id": "MEM123"})
    if token is not None:
        params["flow_token"] = token
    message = {"from": user, "id": wamid or new_wamid(), "timestamp": "1749416383", "type": "interactive",
               "interactive": {"type": "nfm_reply", "nfm_reply": {
                   "name": "flow", "body": "Sent",
                   "response_json": response_json if response_json is not None else json.dumps(params)}}}
    if context_id:
        message["context"] = {"from": "15550001111", "id": context_id}
    return message


def text_message(body: str = "hello", wamid: str | None = None, user: str = USER,
                 timestamp: str = "1749416000") -> dict:
    return {"from": user, "id": wamid or new_wamid(), "timestamp": timestamp, "type": "text",
            "text": {"body": body}}


def status(wamid: str, state: str = "delivered", code: int | None = None,
           callback: str | None = None) -> dict:
    entry = {"id": wamid, "status": state, "timestamp": "1749416400", "recipient_id": USER}
    if code is not None:
        entry["errors"] = [{"code": code, "title": "error", "error_data": {"details": "x"}}]
    if callback:
        entry["biz_opaque_callback_data"] = callback
    return entry


def flows_change(event: str = "ENDPOINT_ERROR_RATE", **value) -> dict:
    body = {"event": event, "message": "Flow endpoint error rate", "flow_id": "8432", **value}
    return {"field": "flows", "value": body}


def body_of(*changes) -> bytes:
    return json.dumps(envelope(*changes)).encode()


def signed_headers(raw: bytes, secret: str) -> dict:
    return {HEADER: sign(secret, raw), "Content-Type": "application/json"}


def button_reply(button_id: str, title: str, wamid: str | None = None, user: str = USER,
                 context_id: str = "wamid.recovery-message") -> dict:
    """A tap on a quick-reply button of an interactive message we sent (ours: resume / stop)."""
    return {"from": user, "id": wamid or new_wamid(), "timestamp": "1749416500", "type": "interactive",
            "context": {"from": "15550001111", "id": context_id},
            "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}}


def image_message(wamid: str | None = None, user: str = USER, caption: str | None = None) -> dict:
    """A photo from the user (e.g. of a member card): no text for the intents to read."""
    image = {"mime_type": "image/jpeg", "sha256": "abc", "id": "1234567890"}
    if caption is not None:
        image["caption"] = caption
    return {"from": user, "id": wamid or new_wamid(), "timestamp": "1749416600", "type": "image",
            "image": image}


# --- WhatsApp usernames: business-scoped user IDs (docs/meta-facts.md) -------------------------

def user_contact(bsuid: str | None = None, phone: str | None = None, username: str | None = None,
                 parent: str | None = None, name: str = "Jane") -> dict:
    """A ``contacts[]`` entry: ``wa_id`` only when the phone may be shared, ``user_id`` always,
    ``profile.username`` when the user has one."""
    contact = {"profile": {"name": name, **({"username": username} if username else {})}}
    if phone:
        contact["wa_id"] = phone
    if bsuid:
        contact["user_id"] = bsuid
    if parent:
        contact["parent_user_id"] = parent
    return contact


def by_username(message: dict, bsuid: str, phone: str | None = None, parent: str | None = None) -> dict:
    """The same message from a username user: ``from_user_id`` (+ ``from_parent_user_id``), and
    ``from`` only when Meta may still share the phone."""
    out = {k: v for k, v in message.items() if k != "from"}
    out["from_user_id"] = bsuid
    if phone:
        out["from"] = phone
    if parent:
        out["from_parent_user_id"] = parent
    return out


def system_change(wamid: str | None = None, *, kind: str = "user_changed_user_id",
                  old_phone: str | None = None, new_phone: str | None = None, new_bsuid: str | None = None,
                  previous_bsuid: str | None = None) -> dict:
    """A ``system`` message: the user's number or BSUID changed (no ``contacts`` array with it)."""
    system = {"body": "User changed", "type": kind}
    for key, value in (("wa_id", new_phone), ("user_id", new_bsuid), ("previous_user_id", previous_bsuid)):
        if value:
            system[key] = value
    message = {"id": wamid or new_wamid(), "timestamp": "1749416700", "type": "system", "system": system}
    if old_phone:
        message["from"] = old_phone
    return message


def user_id_update_change(previous: str, current: str, phone: str | None = None) -> dict:
    """The ``user_id_update`` change as documented in March 2026."""
    entry = {"detail": "User id has been updated.", "user_id": {"previous": previous, "current": current},
             "timestamp": "1749416800"}
    if phone:
        entry["wa_id"] = phone
    return {"field": "user_id_update", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
        "user_id_update": [entry]}}
