"""Recovery: the ladder of nudges for abandoned Flows, and the one fallback message for failed ones.

A ladder runs on the first session of a chain (its ``origin``). Each step re-reads the chain's
latest session and does nothing if the user completed, opted out, or completed without a token
(``Contacts`` keeps the last completion per user and flow); otherwise it issues a new token that
carries what the user entered, sends the Flow again through the router, and revokes the previous
token (which then answers 427 pointing at the new message). Every send has one idempotency key
per (origin, step) and goes out at most once (``workers/effects.py``, ``SKIP``): retries and
duplicate jobs find it done; a worker that died in the middle of the request leaves its outcome
unknown, and that is recorded (``fallback_unknown_outcome`` on the timeline, the fallback list),
never sent again.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job

from flows.identity import User, masked, of_session
from flows.recovery import plan
from flows.sessions import new_token, short
from messaging.outbound import Outbound
from messaging.router import Refused
from workers.effects import deliver_once, settle_delivery
from workers.queues import enqueue_once, is_final_attempt
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.recovery")

OPEN = ("sent", "opened", "in_progress", "failed", "abandoned", "recovering")
FALLBACK_TEXT = {
    "client_error": "Sorry — the form “{title}” ran into a problem on your "
                    "phone. Tap below to start it again.",
    "expired": "The form “{title}” you opened has expired. Here is a fresh one.",
    "lookup_unavailable": "We couldn't check your details just now. Tap below to try “{title}” again.",
    "delivery_failed": "We couldn't deliver the form “{title}”. Here it is again.",
    "invalid_after_completion": "One of your answers in “{title}” turned out to be "
                                "invalid. Tap below to correct it.",
}


def _ext(name):
    return current_app.extensions[name]


def metric(flow: str, event: str, label=None, token: str | None = None) -> None:
    """Count for the dashboard; a metric is never worth failing (and retrying) a send for."""
    try:
        with _ext("metrics").batch() as rec:
            rec.count(flow, event, label=label)
            if token:
                rec.session(token)
    except RedisError as exc:
        redis_unavailable(log, f"metric {event}", exc, "not recorded")


def job_id(kind: str, token: str, step: str = "") -> str:
    # RQ ids allow letters, digits, _ and -; tokens from other tools may hold anything.
    digest = hashlib.sha256(token.encode()).hexdigest()[:24]
    return f"{kind}-{digest}{'-' + step if step else ''}"


# --- scheduling (called from the endpoint's hooks and the send API) ------------------------------


def schedule_ladder(redis, token: str, flow_name: str, ladder, quiet, tz_name: str,
                    started: datetime | None = None) -> list[str]:
    """Enqueue every step at its due time; a second call for the same token adds nothing."""
    started = started or datetime.now(timezone.utc)
    ids = []
    for step, due in plan(ladder, started, quiet, tz_name):
        jid = job_id("rec", token, step.name)
        enqueue_once(redis, "workers.recovery.recovery_step", token, step.name, job_id=jid, at=due)
        ids.append(jid)
    redis.hset(f"fg:session:{token}", "ladder", ",".join(s.name for s in ladder.steps))
    return ids


def cancel_ladder(redis, origin: str, step_names) -> int:
    """Completion cancels what is still pending (each step would re-check and skip anyway)."""
    cancelled = 0
    for name in step_names:
        job = Job.fetch_many([job_id("rec", origin, name)], connection=redis)[0]
        if job is not None and job.get_status(refresh=False) in ("scheduled", "queued", "deferred"):
            job.delete()  # also takes it out of the scheduled registry
            cancelled += 1
    return cancelled


# --- the step job ------------------------------------------------------------------------------


def latest_of(sessions, origin: str) -> tuple[str, dict | None]:
    latest = (sessions.get(origin) or {}).get("latest") or origin
    return latest, sessions.get(latest)


def completed_since(origin_session: dict, user: User) -> bool:
    """A completion we could not tie to a token still counts: the user's last completion of this
    flow, recorded by the completion job, is newer than the ladder's start."""
    contacts = _ext("contacts")
    started = float(origin_session.get("created_at", "0"))
    # "*": a completion that named no flow we know (no token, no matching context.id).
    return any((at or 0) >= started for at in (contacts.last_completion(user, origin_session.get("flow", "")),
                                                contacts.last_completion(user, "*")))


def recovery_step(origin: str, step_name: str) -> str:
    sessions = _ext("sessions")
    root = sessions.get(origin)
    if root is None:
        return "gone"
    flow = _ext("flows").get(root.get("flow", ""))
    ladder = _ext("ladders")(flow)
    step = ladder.step(step_name)
    latest, current = latest_of(sessions, origin)
    # The person, not a number: resolved afresh, so a user who turned on a username (or changed
    # number) mid-chain is still the same user — their opt-out holds, their window counts.
    user = of_session(root)
    user = _ext("contacts").resolve(user, enrich=True) if user else None
    key = f"rec-{origin}-{step_name}"

    def moot(result: str, why: str | None = None) -> str:
        # This step is not sent now; an earlier attempt of it may have died mid-send (a SIGKILL,
        # a Redis restart) and then nothing else would ever record that case: record it first.
        settle_delivery(key, user, token=origin)
        if why:
            sessions.note(origin, "recovery_skipped", f"{step_name}: {why}")
        return result

    if current is None or step is None or flow is None:
        return moot("gone")
    if current["state"] == "completed" or root["state"] in ("completed", "recovered"):
        return moot("completed")
    superseded_by = _superseded_by(ladder, step_name, root)
    if superseded_by:
        # A step retried past its successor (a Graph outage, a dead worker, a Redis restart):
        # sending it now would put an older nudge after a newer one and revoke the newer token.
        # Recorded, so the step is accounted for (tests/test_chaos.py).
        return moot("superseded", f"superseded by {superseded_by}")
    if user is None:
        return moot("no_phone", "no phone number or BSUID known")
    if completed_since(root, user):
        moot("completed")
        if sessions.move(origin, "recovered", OPEN, detail=f"completed without token before {step_name}"):
            metric(flow.name, "recovered",
                   label=(root.get("conversation") or "none", root.get("last_step") or "none"))
        return "completed"
    if _ext("contacts").opted_out(user):
        return moot("opted_out", "opted out")
    if current["state"] not in OPEN:
        return moot(current["state"])
    if sessions.move(origin, "abandoned", ("sent", "opened", "in_progress", "failed"), detail=step_name):
        metric(flow.name, "abandoned", token=origin)
    text = step.text.format(title=flow.title)
    result = resend(origin, latest, flow, user, text, key=key, final=is_final_attempt(), step=step_name)
    if result in ("sent", "unknown"):  # unknown: it may have reached the user; the ladder goes on
        sessions.move(origin, "recovering", ("abandoned", "recovering"), detail=step_name)
        if step_name == ladder.steps[-1].name:
            enqueue_once(current_app.extensions["redis"], "workers.recovery.give_up", origin,
                         job_id=job_id("giveup", origin),
                         delay=timedelta(seconds=_ext("recovery_settings")["give_up_after"]))
    return result


def _superseded_by(ladder, step_name: str, root: dict) -> str | None:
    """The later step already sent, or the end of the ladder, that makes this step moot."""
    if root.get("state") == "gave_up":
        return "the end of the ladder"
    names = [s.name for s in ladder.steps]
    last = root.get("last_step")
    if last in names and step_name in names and names.index(last) > names.index(step_name):
        return last
    return None


def resend(origin: str, previous: str, flow, user: User, text: str, key: str, final: bool,
           ask_first: bool = True, step: str = "", sender_id: str | None = None) -> str:
    """Issue a new token carrying the user's entries, send it, revoke the previous token.
    ``sender_id``: the business number to send from (a reply to the user; default: ours).

    "sent", "refused", or "unknown" when an earlier attempt died mid-send: then nothing is sent
    and the previous token stays open (the user may never have had the new one)."""
    sessions, redis = _ext("sessions"), current_app.extensions["redis"]
    token = redis.get(f"fg:resend:{key}")  # the same token on every retry of this send
    token = token.decode() if token else None
    if token is None:
        token = new_token()
        if not redis.set(f"fg:resend:{key}", token, nx=True, ex=7 * 24 * 3600):
            token = redis.get(f"fg:resend:{key}").decode()
        sessions.issue(token, flow.name, user, prefill=sessions.carried(previous), origin=origin)
    out = Outbound(to=user, text=text, key=key, flow_name=flow.name, flow_token=token,
                   screen=flow.entry_screen, prefill=flow_prefill(flow, sessions.carried(previous)),
                   cta="Continue", buttons=("Resume", "Stop") if ask_first else (), sender_id=sender_id)
    try:
        outcome = deliver_once(out, token=origin, final=final)
    except Refused as exc:
        sessions.note(origin, "send_refused", f"{key}: {exc.reason}")
        log.info("origin=%s %s refused: %s", short(origin), _shown(key, origin, previous), exc.reason)
        metric(flow.name, "failed", label=f"send:{exc.reason.split(' (')[0][:30]}")
        return "refused"
    if outcome.ambiguous:
        log.warning("origin=%s %s outcome unknown (an attempt died mid-send); not sent again",
                    short(origin), _shown(key, origin, previous))
        return "unknown"
    record = outcome.result
    if record.get("message_id") and record.get("channel") == "cloud":
        sessions.link_message(token, record["message_id"])
    sessions.set(origin, latest=token, conversation=record.get("channel", ""),
                 last_step=step or key.split("-", 1)[0])
    sessions.set(previous, replaced_by=token)  # closes the token (427) even on the chain's origin
    if previous != origin:  # the origin's state tracks the chain: abandoned → recovering → ...
        sessions.move(previous, "revoked", OPEN, detail=f"replaced by {short(token)}")
    sessions.note(origin, "sent", f"{key} via {record.get('channel')}")
    log.info("origin=%s to=%s %s sent via %s", short(origin), masked(user), _shown(key, origin, previous),
             record.get("channel"))
    return "sent"


def _shown(key: str, *tokens: str) -> str:
    """An idempotency key as a log line may carry it: the tokens inside it shortened."""
    for token in tokens:
        key = key.replace(token, short(token)) if token else key
    return key


def flow_prefill(flow, carried: dict) -> dict:
    """Prefill the entry screen with what the user entered, as far as the screen declares it."""
    declared = next((s.get("data", {}) for s in flow.definition["screens"]
                     if s["id"] == flow.entry_screen), {})
    return {k: v for k, v in carried.items() if k in declared}


def give_up(origin: str) -> str:
    sessions = _ext("sessions")
    latest, current = latest_of(sessions, origin)
    if current is not None and current["state"] == "completed":
        return "completed"
    moved = sessions.move(origin, "gave_up", ("abandoned", "recovering"), detail="ladder finished")
    return "gave_up" if moved else "unchanged"


# --- completion and fallback -----------------------------------------------------------------


def on_completed(token: str) -> None:
    """A session of a chain completed: the chain's origin is recovered, its ladder cancelled."""
    sessions, redis = _ext("sessions"), current_app.extensions["redis"]
    session = sessions.get(token) or {}
    origin = session.get("origin") or token
    root = sessions.get(origin) or {}
    if origin != token and sessions.move(origin, "recovered", ("abandoned", "recovering", "revoked"),
                                         detail=f"completed via {short(token)}"):
        metric(root.get("flow", "-"), "recovered",
               label=(root.get("conversation") or "none", root.get("last_step") or "none"), token=origin)
    ladder = [s for s in root.get("ladder", "").split(",") if s]
    if ladder:
        cancel_ladder(redis, origin, ladder)


def after_completion(submission_id: str, token: str | None) -> str:
    """Post-completion hook (workers.completion.POST_COMPLETION_HOOKS)."""
    if token:
        on_completed(token)
    return "done"


def fallback(token: str, reason: str) -> str:
    """Once per session (the send's idempotency key is the session's): tell the user what
    happened and hand them a fresh Flow."""
    sessions = _ext("sessions")
    session = sessions.get(token)
    user = of_session(session)
    if user is None:
        return "no_phone"
    flow = _ext("flows").get(session.get("flow", ""))
    if flow is None:
        return "gone"
    user = _ext("contacts").resolve(user, enrich=True)
    if _ext("contacts").opted_out(user):
        settle_delivery(f"fb-{token}", user, token=session.get("origin") or token)  # as recovery_step's moot
        sessions.note(token, "fallback_skipped", "opted out")
        return "opted_out"
    sessions.note(token, "fallback", reason)
    text = FALLBACK_TEXT.get(reason, FALLBACK_TEXT["client_error"]).format(title=flow.title)
    origin = session.get("origin") or token
    return resend(origin, token, flow, user, text, key=f"fb-{token}", final=is_final_attempt(),
                  step="fallback")
