"""Jobs for a completed Flow (an ``nfm_reply`` webhook): store it, close the session, tell the
business, thank the user — each side effect exactly once however often the job runs.

Storing comes first: the user's answers are kept before anything that can fail for reasons of its
own (correlating the reply with its session, the confirmation, the forward), so a job that fails
after it — and ends, retries used up, with the dead letters — has lost nothing.

Runs in a forked RQ horse with the app context of ``flask worker``; reaches Redis, the session
store and the router through ``current_app``.
"""
from __future__ import annotations

import importlib
import json
import logging
import time

from flask import current_app
from rq.timeouts import JobTimeoutException

from stores.correlation import Correlation
from flows.identity import User, masked, of_job, session_fields, shown
from flows.redact import wamid
from flows.sessions import short
from records.submissions import submission_id
from flows.webhook import as_number, clean_strings
from messaging import fallback
from messaging.forward import ForwardError, post_signed
from messaging.outbound import Outbound
from messaging.router import Refused
from workers import receipts
from workers.effects import RESEND, SKIP, Effects, nothing_sent, record_sent
from workers.queues import LOW, enqueue_once, is_final_attempt, retry_from
from workers.recovery import metric

log = logging.getLogger("flowgate.completion")

# Run in turn once a session is marked completed, by dotted path, each called as
# ``f(submission_id, flow_token)`` (token may be None) and idempotent: a completion job that runs
# again runs them again. Validation (issue 3) appends its re-check of values accepted unverified.
POST_COMPLETION_HOOKS: list[str] = [
    "workers.recovery.after_completion",  # the chain is recovered, its pending steps cancelled
    "workers.recheck.after_completion",  # values accepted unverified are checked again
]

# Any state a Flow can be completed from; ``completed`` itself is left alone (endpoint SUCCESS
# usually got there first).
COMPLETABLE = ("sent", "opened", "in_progress", "failed", "abandoned", "recovering", "recovered")
UNUSED_TOKEN = "unused"  # what Meta puts in when the sender gave no token (protocol doc 9)


class ForwardFailed(Exception):
    """The business's system did not take the submission; nothing to undo, RQ retries."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def _response_json(message: dict):
    """The raw ``response_json``, whatever its type, or None when the reply has none."""
    interactive = message.get("interactive")
    reply = interactive.get("nfm_reply") if isinstance(interactive, dict) else None
    return reply.get("response_json") if isinstance(reply, dict) else None


def parse_response(message: dict) -> tuple[dict | None, str | None]:
    """(response_json decoded, None) or (None, what is wrong with it)."""
    raw = _response_json(message)
    if not isinstance(raw, str):
        return None, "response_json missing or not a string"
    try:
        # Cleaned like the webhook body: a "\ud800" escape inside it is valid JSON too.
        value = clean_strings(json.loads(raw))
    except (ValueError, RecursionError):
        return None, "response_json is not JSON"
    if not isinstance(value, dict):
        return None, "response_json is not an object"
    return value, None


def process_completion(message: dict, phone_number_id: str | None = None, extra: dict | None = None) -> dict:
    ext, cfg = current_app.extensions, current_app.config
    redis, sessions = ext["redis"], ext["sessions"]
    # Intake cleans what it enqueues; a job enqueued before it did (or requeued from the failed
    # registry) may still hold a lone surrogate, which Redis refuses to encode.
    message = clean_strings(message)
    msg_id = message["id"]
    # The person, by phone, BSUID or both (a username user may send no phone at all).
    sender = of_job(message, extra)
    response, problem = parse_response(message)
    token = (response or {}).get("flow_token")
    token = token if isinstance(token, str) and token and token != UNUSED_TOKEN else None

    # Stored first (SQL: records/submissions.py), with what the message itself says; completed
    # below once the session is known. Unique on the message id: a re-run inserts nothing and
    # keeps what an earlier run stored (a forward may be reading it). A database error fails the
    # job before anything else happened; RQ retries it.
    sid = submission_id(msg_id)
    received_at = as_number(message.get("timestamp")) or time.time()
    store = ext["records"].submissions
    document = {
        "id": sid, "message_id": msg_id, "from": sender.phone,
        "user_id": sender.bsuid or sender.parent_bsuid, "username": sender.username,
        "phone_number_id": phone_number_id,
        "flow_token": token, "correlated_by": "flow_token" if token else None,
        "flow": None, "session_known": False,
        "received_at": received_at, "response": response, "problem": problem,
        "raw": None if response is not None else str(_response_json(message))[:65536],
    }
    if not store.add(document):
        document = store.get(sid) or document
    # Linked to one contact record before anything else is written for them.
    user = ext["contacts"].learn(sender)

    # Correlate: the token in the reply, else the Flow message this reply answers (context.id).
    correlation = Correlation(redis, sessions)
    via = "flow_token"
    if token is None:
        context = message.get("context") if isinstance(message.get("context"), dict) else {}
        context_id = context.get("id")
        token, via = correlation.token_for(context_id if isinstance(context_id, str) else None), "context"
    session = _complete_session(sessions, correlation, token, msg_id, user) if token else None
    completed = {**document, "flow_token": token, "correlated_by": via if token else None,
                 "flow": (session or {}).get("flow"), "session_known": bool(session and session.get("known"))}
    if completed != document:
        store.correlate(sid, flow_token=completed["flow_token"], correlated_by=completed["correlated_by"],
                        flow=completed["flow"], session_known=completed["session_known"])

    # The nfm_reply is itself an inbound message: it opens the 24 h window (its text is form data:
    # not kept with the contact).
    contacts = ext["contacts"]
    contacts.inbound(user, msg_id, received_at, "nfm_reply")
    # Kept per user and flow: a completion that could not be tied to a token still stops recovery.
    contacts.record_completion(user, (session or {}).get("flow") or "*", received_at)
    log.info("completion %s from %s token=%s via=%s session=%s submission=%s", wamid(msg_id), masked(user),
             short(token), via if token else "-", (session or {}).get("state", "unknown"), sid)
    if problem:
        # Nothing the user or a retry can fix: stored for a human, not forwarded, not confirmed.
        log.warning("completion %s: %s; stored as %s, not forwarded or confirmed",
                    wamid(msg_id), problem, sid)
        return {"submission": sid, "problem": problem}

    _enqueue_follow_ups(redis, cfg, sid, token)
    _run_hooks(redis, cfg, sid, token, (session or {}).get("flow"))
    confirmation = _confirm(ext, cfg, user, msg_id, token, phone_number_id)
    # After the confirmation, as its own job: a receipt that fails never holds the text back.
    receipts.enqueue_receipt(redis, cfg, sid)
    return {"submission": sid, "flow_token": token, "confirmation": confirmation}


def _complete_session(sessions, correlation, token: str, msg_id: str, user: User) -> dict:
    prev = sessions.move(token, "completed", COMPLETABLE, event="completed",
                         detail=f"webhook {wamid(msg_id)}")
    current = sessions.get(token)
    if prev and current:  # endpoint SUCCESS usually counted it already (then prev is None)
        metric(current.get("flow", "-"), "completed", token=token)
    if current is None:
        # A Flow sent by another tool: close the token anyway so the endpoint answers 427 to it.
        correlation.issue(token, "", state="completed", wamid=msg_id)
        sessions.set(token, **session_fields(user))
        return {"state": "completed", "known": False}
    if user.username and prev:
        # Who completed it, as the dashboard shows a user: the username masked like a phone.
        sessions.set(token, **{k: v for k, v in session_fields(user).items()
                               if not current.get(k) or k == "username"})
        sessions.note(token, "user", shown(user))
    return {**current, "known": True, "previous": prev}



def _enqueue_follow_ups(redis, cfg, sid: str, token: str | None) -> None:
    """Unique job ids: a retried completion job does not enqueue them again."""
    if not cfg["COMPLETION_FORWARD_URL"]:
        return
    enqueue_once(redis, "workers.completion.forward_submission", sid, queue_name=LOW, job_id=f"forward-{sid}",
                 retry=retry_from(cfg))


def _run_hooks(redis, cfg, sid: str, token: str | None, flow: str | None = None) -> None:
    """The post-completion hooks, here rather than in a job of their own: a job costs RQ ~45
    Redis commands, more than the hooks' own work. Hooks that fail are handed to that job
    (``after_completion``, retried with backoff), so they never hold the confirmation back."""
    try:
        after_completion(sid, token, flow)
    except JobTimeoutException:
        raise  # RQ stopping this job: not a hook's failure
    except Exception:  # noqa: BLE001 - not swallowed: logged by after_completion, retried as a job
        own = (flow,) if _flow_hooks(flow) else ()  # the flow's name only when it has hooks of its own
        enqueue_once(redis, "workers.completion.after_completion", sid, token, *own, queue_name=LOW,
                     job_id=f"post-{sid}", retry=retry_from(cfg))


def after_completion(sid: str, token: str | None, flow: str | None = None) -> dict:
    """Every hook of POST_COMPLETION_HOOKS in turn, then the flow's own (``@flow.on_complete``),
    inline in the completion job or as a job of its own when that failed. A hook that raises does
    not keep the next from running; the first error is raised at the end, and as a job it is
    retried (every hook runs again)."""
    results, failed = {}, None
    hooks = [(path, lambda path=path: _dotted(path)) for path in POST_COMPLETION_HOOKS]
    hooks += [(f"{flow}:{fn.__name__}", lambda fn=fn: fn) for fn in _flow_hooks(flow)]
    for path, resolve in hooks:
        try:
            results[path] = resolve()(sid, token)
        except JobTimeoutException:
            raise
        except Exception as exc:  # noqa: BLE001 - raised again below, once the other hooks ran
            log.warning("post-completion hook %s for %s failed: %s", path, sid, type(exc).__name__)
            failed = failed or exc
    if failed is not None:
        raise failed
    return results


def _flow_hooks(flow: str | None) -> list:
    """The flow's own ``@flow.on_complete`` hooks, when it is served here."""
    own = current_app.extensions["flows"].get(flow) if flow else None
    return own.completion_hooks if own else []


def _dotted(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _confirm(ext, cfg, to: User, msg_id: str, token: str | None, sender_id: str | None) -> str:
    router, sessions, redis = ext["router"], ext["sessions"], ext["redis"]
    key = f"confirm:{msg_id}"
    if router.sends_nothing:  # FOLLOWUP_CHANNEL=none: the submission is stored, no message
        if token:
            sessions.note(token, "confirmation_skipped", "FOLLOWUP_CHANNEL=none")
        return "not_sent"
    # Sent from the number the user wrote to (protocol doc 7.1); the completion itself opened the
    # window, so the contact record's idea of it is not consulted (Meta answers 131047 if closed).
    out = Outbound(to=to, text=cfg["CONFIRMATION_TEXT"], key=key, sender_id=sender_id)

    def send() -> dict:
        try:
            return router.deliver(out, final_attempt=is_final_attempt(), in_window=True).to_dict()
        except Refused as exc:  # recorded: a re-run does not try again (retryable errors raise)
            return {"failed": exc.kind or "refused", "code": exc.code, "reason": exc.reason[:300],
                    "unreachable": exc.unreachable}

    # The router asks the consent ledger first: after a STOP, not even a thank-you (refused).
    outcome = Effects(redis, cfg["EFFECT_LEASE_SECONDS"]).once(
        key, send, safe_to_retry=nothing_sent, when_lost=SKIP)
    result = outcome.result or {}
    record_sent(result, to, key=key, token=token)  # the message log (SQL), idempotent
    if outcome.state == "performed" and "failed" in result:
        if token:
            event = "confirmation_refused" if result["failed"] == "refused" else "confirmation_failed"
            sessions.note(token, event, f"{result['failed']} code {result['code']}"
                          if result["code"] is not None else result.get("reason", ""))
        if result.get("unreachable"):  # no number to try anything else with: asked for it already
            if token:
                sessions.note(token, "unreachable", result["reason"])
        elif result["failed"] != "refused":  # a channel refused it: a person takes the case
            fallback.hand_over(redis, sessions, reason=result["failed"], to=to, token=token,
                               message_id=msg_id, code=result["code"])
        return result["failed"]
    if outcome.state == "performed":
        if token:
            sessions.note(token, "confirmation_sent", f"{result['channel']} {wamid(result['message_id'])}")
        return "sent"
    if outcome.state == "lost":
        # A worker died while sending: Meta may or may not have it. Never resend blindly.
        log.warning("completion %s: confirmation outcome unknown (an earlier attempt died mid-send)",
                    wamid(msg_id))
        fallback.hand_over(redis, sessions, reason="unknown_outcome", to=to, token=token, message_id=msg_id)
        return "unknown"
    log.info("completion %s: confirmation already %s by an earlier run", wamid(msg_id), outcome.state)
    return f"already_{outcome.state}"


def forward_submission(sid: str) -> str:
    """POST the submission to COMPLETION_FORWARD_URL, signed (HMAC-SHA256 of the body with
    COMPLETION_FORWARD_SECRET) and carrying ``Idempotency-Key``: after a worker died mid-POST it is
    sent again with the same key, so the receiver can drop the duplicate."""
    ext, cfg = current_app.extensions, current_app.config
    document = ext["records"].submissions.get(sid)
    url = cfg["COMPLETION_FORWARD_URL"]
    if document is None or not url:
        log.warning("forward %s skipped: %s", sid,
                    "submission erased or purged" if url else "no URL configured")
        return "skipped"
    payload = {k: document.get(k) for k in (
        "id", "message_id", "from", "user_id", "flow_token", "flow", "received_at", "response")}

    def post() -> dict:
        try:
            return {"status": post_signed(ext["forward_http"], url, cfg["COMPLETION_FORWARD_SECRET"], payload,
                                          idempotency_key=sid)}
        except ForwardError as exc:
            if exc.retryable:
                raise ForwardFailed(str(exc), exc.retry_after) from None
            return {"status": exc.status}

    outcome = Effects(ext["redis"], cfg["EFFECT_LEASE_SECONDS"]).once(
        f"forward:{document['message_id']}", post, safe_to_retry=(ForwardFailed,), when_lost=RESEND)
    status = (outcome.result or {}).get("status")
    if outcome.state == "performed" and status and status >= 400:
        # The receiver refused this document (4xx): resending the same bytes will not change that.
        log.error("forward %s rejected with HTTP %s; not retried", sid, status)
        return "rejected"
    return "forwarded" if outcome.state == "performed" else f"already_{outcome.state}"
