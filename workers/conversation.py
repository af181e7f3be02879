"""Answering the user who replies to a recovery or fallback message, on either channel.

A reply is matched to the user's latest Flow chain that had a recovery or fallback message. Then:
- resume → a fresh Flow (new token, entries carried), by the recovery channel rules;
- stop → opt-out on both channels, confirmed once;
- help or anything else → a person: the message goes on the session timeline and to
  HANDOFF_FORWARD_URL, and the user is told once that someone will answer.
Each automated answer goes out at most once per session and intent (its idempotency key, through
``workers/effects.py`` with ``SKIP``: one whose worker died mid-send is recorded as
``unknown_outcome``, not sent again); each forward is POSTed with an ``Idempotency-Key`` (the
message id) and resent after such a death (``RESEND``), for the business's receiver to drop the
duplicate. After a hand-over, further messages are only forwarded, so the conversation can never
loop.
"""
from __future__ import annotations

import logging
import time

from flask import current_app

from flows.identity import User, masked
from flows.intents import RESUME, STOP
from flows.sessions import short
from messaging.forward import ForwardError, post_signed
from messaging.outbound import Outbound
from messaging.router import Refused
from workers.effects import RESEND, Effects, deliver_once
from workers.recovery import cancel_ladder, latest_of, metric, resend

log = logging.getLogger("flowgate.conversation")

RESUME_TEXT = "Here is “{title}” again — your answers so far are filled in."
STOP_TEXT = "Done — you won't get any more reminders from us. Reply RESUME if you change your mind."
HANDOFF_TEXT = "Thanks for your message. A person from our team will answer you here shortly."


def _ext(name):
    return current_app.extensions[name]


def conversation_for(user: User) -> str | None:
    """The origin of the user's latest chain that we wrote to (recovery or fallback)."""
    sessions = _ext("sessions")
    for token in _ext("contacts").recent_sessions(user):
        session = sessions.get(token) or {}
        origin = session.get("origin") or token
        root = sessions.get(origin) if origin != token else session
        if root and root.get("conversation"):
            return origin
    return None


def handle_reply(channel: str, who, text: str | None, button_id: str | None,
                 message_id: str, sender_id: str | None = None) -> str:
    """One inbound message (job, fed by both webhook blueprints). Returns what was done.

    ``who``: the user (a phone number, a BSUID, or both: ``flows.identity``), resolved here to the
    one contact record every channel shares. ``sender_id``: the business number the user wrote to
    (Cloud webhooks' ``phone_number_id``): every answer goes out from it, so a business with
    several numbers answers on the right one.
    """
    sessions, contacts = _ext("sessions"), _ext("contacts")
    user = contacts.resolve(who, enrich=True)
    intent = _ext("intents").classify(text, button_id)
    origin = conversation_for(user)
    if intent == STOP:
        return _stop(channel, user, origin, sender_id, message_id)
    if intent == RESUME and contacts.opt_in(user, channel, message_id):
        # STOP_TEXT promises it: RESUME after a STOP undoes the opt-out (then resumes, if it can).
        log.info("user %s opted back in via %s", masked(user), channel)
        if origin:
            sessions.note(origin, "opted_in", f"via {channel}")
    if origin is None:
        return "no_conversation"
    root = sessions.get(origin)
    if intent == RESUME and not root.get("handed_over"):
        result = _resume(origin, user, sender_id)
        if result != "already":
            return result
    return _hand_over(channel, user, origin, text, message_id, sender_id)


def _resume(origin: str, user: User, sender_id: str | None) -> str:
    sessions = _ext("sessions")
    latest, current = latest_of(sessions, origin)
    if current and current["state"] == "completed":
        return "already"  # nothing to resume: let a person read it
    flow = _ext("flows").get(sessions.get(origin)["flow"])
    if flow is None or _done(f"resume-{origin}"):
        return "already"
    result = resend(origin, latest, flow, user, RESUME_TEXT.format(title=flow.title),
                    key=f"resume-{origin}", final=True, ask_first=False, step="resume", sender_id=sender_id)
    return "resumed" if result == "sent" else result


def _stop(channel: str, user: User, origin: str | None, sender_id: str | None, message_id: str) -> str:
    contacts, sessions = _ext("contacts"), _ext("sessions")
    # Into the consent ledger (SQL, for ever) with the message that said it; a retried job adds nothing.
    new = contacts.opt_out(user, channel, message_id=message_id)
    if origin:
        sessions.note(origin, "opted_out", f"via {channel}")
        ladder = [s for s in (sessions.get(origin) or {}).get("ladder", "").split(",") if s]
        cancel_ladder(current_app.extensions["redis"], origin, ladder)
    log.info("user %s opted out via %s (%s)", masked(user), channel, "new" if new else "again")
    if new:
        flow = (sessions.get(origin) or {}).get("flow", "-") if origin else "-"
        metric(flow, "opt_out", label=channel)
    # One confirmation per person: the contact key is the phone for everyone known by it before.
    _say(channel, user, STOP_TEXT, key=f"stop-{user.key}", opt_out_notice=True, origin=origin,
         sender_id=sender_id)
    return "opted_out"


def _hand_over(channel: str, user: User, origin: str, text: str | None, message_id: str,
               sender_id: str | None) -> str:
    sessions = _ext("sessions")
    sessions.note(origin, "user_message", f"{channel}: {(text or '[media or other]')[:500]}")
    sessions.set(origin, handed_over=f"{time.time():.3f}")
    _forward(channel, user, origin, text, message_id)
    _say(channel, user, HANDOFF_TEXT, key=f"handoff-{origin}", origin=origin, sender_id=sender_id)
    return "handed_over"


def _forward(channel, user: User, origin, text, message_id) -> None:
    cfg = current_app.config
    if not cfg["HANDOFF_FORWARD_URL"]:
        return
    session = _ext("sessions").get(origin) or {}
    payload = {"type": "handoff", "channel": channel, "from": user.phone, "user_id": user.bsuid,
               "username": user.username, "message_id": message_id,
               "text": text, "flow": session.get("flow"), "flow_token": session.get("latest") or origin,
               "at": round(time.time(), 3)}

    def post():
        try:
            return {"status": post_signed(_ext("forward_http"), cfg["HANDOFF_FORWARD_URL"],
                                          cfg["HANDOFF_FORWARD_SECRET"], payload, idempotency_key=message_id)}
        except ForwardError as exc:
            if exc.retryable:
                raise  # released: the job's retry POSTs again, with the same Idempotency-Key
            _ext("sessions").note(origin, "handoff_forward_failed", str(exc))
            return {"failed": str(exc)}

    Effects(current_app.extensions["redis"], cfg["EFFECT_LEASE_SECONDS"]).once(
        f"handoff-fwd-{message_id}", post, safe_to_retry=(ForwardError,), when_lost=RESEND)


def _say(channel, user: User, text, key, origin=None, opt_out_notice=False, sender_id=None) -> None:
    out = Outbound(to=user, text=text, key=key, sender_id=sender_id)
    try:
        deliver_once(out, token=origin, via=channel, opt_out_notice=opt_out_notice)
    except Refused as exc:
        if origin:
            _ext("sessions").note(origin, "send_refused", f"{key}: {exc.reason}")
        # The key holds the phone (stop-…) or the token (handoff-…): log only its kind.
        log.info("to=%s %s not sent: %s (token %s)", masked(user), key.split("-", 1)[0], exc.reason,
                 short(origin))


def _done(key: str) -> bool:
    """The effect went out, or may have (an unknown outcome is never sent again)."""
    effects = Effects(current_app.extensions["redis"], current_app.config["EFFECT_LEASE_SECONDS"])
    return effects.state(key).get("state") in ("done", "unknown")


def wasender_inbound(wa_id: str, text: str, message_id: str) -> str:
    """A message that reached our WASender number (it does not open the Cloud API's window).
    WASender knows phone numbers only; the contact record they resolve to is the person's."""
    sessions, contacts = _ext("sessions"), _ext("contacts")
    user = contacts.resolve(User(phone=wa_id), enrich=True)
    recent = contacts.recent_sessions(user)
    if recent:
        sessions.note(recent[0], "inbound", f"wasender message {message_id[:24]}")
    return handle_reply("wasender", user, text, None, message_id)
