"""Sending a Flow: issue a token and its session, then deliver it from a worker.

The session exists before the message leaves, so the endpoint knows the token (strict policy)
and the recovery ladder has someone to come back to: a phone number, or a business-scoped user ID
(a WhatsApp username user who shared no number).
"""
from __future__ import annotations

import logging
from flask import current_app

from flows.identity import masked, of_session, parse_address
from flows.sessions import new_token, short
from messaging.outbound import Outbound
from messaging.router import Refused
from workers.effects import deliver_once
from workers.queues import DEFAULT, enqueue, is_final_attempt
from workers.recovery import flow_prefill, job_id, metric

log = logging.getLogger("flowgate.sending")


def invite_text(flow) -> str:
    return getattr(flow, "invite", None) or f"Please fill in “{flow.title}” — it takes a minute."


def issue_and_enqueue(app, flow, to: str, data: dict | None = None) -> dict:
    """Create the session and queue its delivery; returns what the API and CLI report.
    ``to``: an international number or a BSUID (ValueError otherwise)."""
    if app.extensions["router"].sends_nothing:
        raise ValueError("this deployment sends nothing (FOLLOWUP_CHANNEL=none)")
    ext = app.extensions
    user = ext["contacts"].resolve(parse_address(to), enrich=True)
    token = new_token()
    ext["sessions"].issue(token, flow.name, user, prefill=data or {})
    ext["contacts"].add_session(user, token)
    enqueue(ext["redis"], "workers.sending.deliver_flow", token, queue_name=DEFAULT,
            job_id=job_id("send", token))
    return {"flow_token": token, "flow": flow.name, "state": ext["sessions"].get(token)["state"]}


def deliver_flow(token: str) -> str:
    ext = current_app.extensions
    sessions = ext["sessions"]
    session = sessions.get(token)
    if session is None:
        return "gone"
    flow = ext["flows"].get(session["flow"])
    user = of_session(session)
    out = Outbound(to=user, text=invite_text(flow), key=f"send-{token}", flow_name=flow.name,
                   flow_token=token, screen=flow.entry_screen,
                   prefill=flow_prefill(flow, sessions.carried(token)), cta="Open form")
    try:
        outcome = deliver_once(out, token=token, final=is_final_attempt())
    except Refused as exc:
        sessions.note(token, "send_refused", exc.reason)
        sessions.move(token, "failed", ("sent",), detail=f"not delivered: {exc.reason}")
        log.info("token=%s to=%s not sent: %s", short(token), masked(user), exc.reason)
        metric(flow.name, "failed", label=f"send:{exc.reason.split(' (')[0][:30]}", token=token)
        return "refused"
    if outcome.ambiguous:  # an attempt died mid-send: not sent again, handed over (workers/effects.py)
        return "unknown"
    record = outcome.result
    if record.get("channel") == "cloud" and record.get("message_id"):
        sessions.link_message(token, record["message_id"])
    sessions.note(token, "delivered", f"via {record.get('channel')}")
    metric(flow.name, "sent", token=token)
    if ext["recovery_settings"]["start"] == "sent":
        ext["recovery_hooks"].start(flow.name, token)
    return "sent"

