"""Jobs for the rest of the webhook: inbound user messages, delivery statuses, ``flows`` events,
and changes of a user's identifiers.

Each is idempotent on its own terms: the contact's window only moves forward, a status is a field
set to the same value, an event is recorded once because intake deduplicates it, linking the same
identifiers twice changes nothing.
"""
from __future__ import annotations

import json
import logging
import time

from flask import current_app

from flows import identity
from flows.webhook import as_number
from stores.correlation import Correlation
from flows.identity import User, masked
from flows.redact import wamid
from messaging import fallback
from messaging.graph import classify
from workers import receipts
from workers.conversation import handle_reply
from workers.queues import HIGH, enqueue_once
from workers.recovery import job_id

log = logging.getLogger("flowgate.inbound")

FLOW_EVENTS = "fg:flows:events"
FLOW_EVENTS_LENGTH = 1000
STATUS_KEEP_SECONDS = 8 * 24 * 3600


def message_text(message: dict) -> str | None:
    """The words the user typed or tapped (what STOP / opt-out detection reads), else None."""
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body") or "")
    if kind == "button":  # a template quick-reply button
        return str((message.get("button") or {}).get("text") or "")
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return str(reply.get("title") or "") if reply else None
    return None


def record_inbound(message: dict, phone_number_id: str | None = None, extra: dict | None = None) -> str:
    """Any user message opens or refreshes the 24 h customer-service window (protocol doc 8.3)."""
    contacts = current_app.extensions["contacts"]
    at = as_number(message.get("timestamp")) or time.time()
    text = message_text(message)
    who = identity.of_job(message, extra)
    shared = identity.shared_phone(message)
    if shared and not who.phone:  # they tapped our REQUEST_CONTACT_INFO button: their own number
        who = User(phone=shared, bsuid=who.bsuid, parent_bsuid=who.parent_bsuid, username=who.username)
    user = contacts.learn(who)  # phone and BSUID seen together: one person from now on
    contacts.inbound(user, message["id"], at, message.get("type", ""), text)
    log.info("inbound %s %s from %s%s", message.get("type"), wamid(message["id"]), masked(user),
             " (shared their number)" if shared else "")
    # A reply to a recovery or fallback message (or a STOP) is answered by the conversation logic.
    return handle_reply("cloud", user, text, button_id(message), message["id"], sender_id=phone_number_id)


def button_id(message: dict) -> str | None:
    """The id of the quick-reply button tapped (our recovery messages use resume / stop)."""
    interactive = message.get("interactive") or {}
    reply = interactive.get("button_reply") if isinstance(interactive, dict) else None
    if isinstance(reply, dict) and reply.get("id"):
        return str(reply["id"])[:40]
    button = message.get("button") or {}
    return (str(button.get("payload"))[:40].lower()
            if isinstance(button, dict) and button.get("payload") else None)


def record_status(status: dict, phone_number_id: str | None = None, extra: dict | None = None) -> str:
    """sent / delivered / read / failed for a message we sent; a failure goes to the fallback."""
    ext = current_app.extensions
    redis, sessions = ext["redis"], ext["sessions"]
    msg_id, state = status["id"], status["status"]
    user = User.from_dict((extra or {}).get("user"))
    if user is not None and (user.phone and (user.bsuid or user.parent_bsuid)):
        user = ext["contacts"].learn(user)  # delivered/read statuses name both: link them early
    key = f"fg:status:{msg_id}"
    pipe = redis.pipeline()
    pipe.hset(key, state, str(status.get("timestamp") or time.time()))
    if status.get("biz_opaque_callback_data"):
        pipe.hset(key, "callback", str(status["biz_opaque_callback_data"])[:512])
    pipe.expire(key, STATUS_KEEP_SECONDS)
    pipe.execute()
    errors = status.get("errors") if isinstance(status.get("errors"), list) else []
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    # The outbound message log (SQL): one row per message and status, so a redelivery adds nothing.
    ext["records"].messages.status(
        str(msg_id), str(state), at=as_number(status.get("timestamp")) or time.time(), error_code=code,
        error_title=str(error.get("title") or "") or None,
        recipient=str(status.get("recipient_id") or "") or (user.phone or user.bsuid if user else None))
    if state != "failed":
        return state
    if receipts.failed_status(status.get("biz_opaque_callback_data"), code, str(error.get("title") or "")):
        return "failed"  # a receipt: recorded on its session; the confirmation was not affected
    token = Correlation(redis, sessions).token_for(msg_id)
    if token and identity.of_session(sessions.get(token)) is not None:
        # The Flow message itself failed: one fallback per session, by the channel rules.
        enqueue_once(redis, "workers.recovery.fallback", token, "delivery_failed", queue_name=HIGH,
                     job_id=job_id("fb", token))
    fallback.hand_over(redis, sessions, reason="failed_status", to=user or status.get("recipient_id"),
                       token=token, message_id=msg_id, code=code,
                       detail=" ".join(filter(None,
                                              [classify(400, code), status.get("biz_opaque_callback_data")])))
    return "failed"


def record_identity_change(change: dict, phone_number_id: str | None = None,
                           extra: dict | None = None) -> str:
    """A user changed number or BSUID: a ``system`` message (``user_changed_number``,
    ``user_changed_user_id``) or a ``user_id_update`` entry. Their record moves to the new
    identifiers, so their sessions, opt-out and window follow them."""
    if change.get("type") == "user_id_update":
        pairs = [(User.from_dict(change.get("before")), User.from_dict(change.get("after")))]
    else:
        pairs = identity.identity_changes({}, change)
    contacts, done = current_app.extensions["contacts"], 0
    for before, after in pairs:
        if before is None or after is None:
            continue
        contacts.rename(before, after)
        done += 1
    system = change.get("system") if isinstance(change.get("system"), dict) else {}
    log.info("identity change %s (%s): %d record(s) moved", wamid(str(change.get("id") or "")),
             str(system.get("type") or change.get("type") or "-")[:40], done)
    return "moved" if done else "nothing_to_move"


def record_flow_event(value: dict, phone_number_id: str | None = None, extra: dict | None = None) -> str:
    """Endpoint health alerts and Flow status changes, kept (capped) for the dashboard."""
    extra = extra or {}
    event = {"at": round(time.time(), 3), "waba_id": extra.get("waba_id"), "time": extra.get("time"), **value}
    redis = current_app.extensions["redis"]
    pipe = redis.pipeline()
    pipe.lpush(FLOW_EVENTS, json.dumps(event))
    pipe.ltrim(FLOW_EVENTS, 0, FLOW_EVENTS_LENGTH - 1)
    pipe.execute()
    if value.get("event") == "FLOW_STATUS_CHANGE" and value.get("flow_id") and value.get("new_status"):
        # The dashboard's copy of Meta's status, without waiting for `flask flows status`.
        current_app.extensions["meta_status"].status_changed(str(value["flow_id"]),
                                                             str(value["new_status"])[:20])
    level = logging.WARNING if value.get("alert_state") == "ACTIVATED" else logging.INFO
    log.log(level, "flows event %s flow=%s state=%s", value.get("event"), value.get("flow_id"),
            value.get("alert_state") or value.get("new_status") or "-")
    return str(value.get("event"))


def flow_events(redis, limit: int = 50) -> list[dict]:
    return [json.loads(x) for x in redis.lrange(FLOW_EVENTS, 0, limit - 1)]
