"""From a decrypted request to the reply: ping, error notifications, tokens, handlers.

No HTTP here: the blueprint decrypts and encrypts, the engine decides. ``Outcome.plaintext`` is the
reply already serialised, so its size is checked once and the bytes are encrypted as they are.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from flows import drift
from flows.budget import Deadline
from flows.crypto import json_bytes
from flows.protocol import ACK_REPLY, PING_REPLY, Finish, FlowRequest, Screen, TokenRejected
from flows.registry import Context, Flow
from flows.sessions import SessionStore, Visit, short
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.endpoint")

GENERIC_ERROR = "Something went wrong on our side. Please try again."
# A handler's write that Redis could not take (a slot hold, a booking): nothing was saved.
STORAGE_UNAVAILABLE = "We can't save this right now. Please try again in a moment."
# A session whose checks could not be answered this many times gets one fallback message.
LOOKUP_FAILURES_BEFORE_FALLBACK = 3
UNKNOWN_STEP = "This step isn't available any more. Please start again from here."
# The endpoint's SUCCESS completes a session from any state that is still open.
COMPLETE = {"to": "completed", "event": "completed", "detail": "endpoint SUCCESS",
            "allowed_from": ("sent", "opened", "in_progress", "failed", "abandoned", "recovering")}
REFUSALS = {
    "completed": "You have already completed this form. Thank you!",
    "expired": "This form has expired. Please ask us for a new one in the chat.",
    "revoked": "This form was replaced by a newer one. Please open the latest message in the chat.",
    "gave_up": "This form has expired. Please ask us for a new one in the chat.",
    "unknown": "We don't recognise this form. Please ask us for a new one in the chat.",
}


@dataclass
class Outcome:
    status: int  # 200, or 427 when the token is refused
    plaintext: bytes
    event: str  # ping, ack, screen, finish, refused, handler_error, storage_unavailable, ...
    screen: str | None = None
    drift: tuple = ()  # flows.drift kinds: the request came from another Flow JSON than the one served


class Hooks:
    """What the rest of the product wants to hear from the endpoint (recovery, fallback).

    Called after the reply is decided; each must be cheap (an enqueue) and must not raise.
    """

    def opened(self, flow: str, token: str) -> None: ...

    def completed(self, flow: str, token: str) -> None: ...

    def client_error(self, flow: str, token: str, error_key: str) -> None: ...

    def refused(self, flow: str, token: str, state: str) -> None: ...

    def lookups_failing(self, flow: str, token: str) -> None: ...


class Engine:
    def __init__(self, sessions: SessionStore, deps: dict, deadline_seconds: float,
                 max_reply_bytes: int, hooks: Hooks | None = None, drift_log: drift.DriftLog | None = None,
                 check_replies: bool = False):
        self.sessions = sessions
        self.check_replies = check_replies  # FLOW_REPLY_CHECK: each reply against the Flow JSON
        self.deps = deps
        self.deadline_seconds = deadline_seconds
        self.max_reply_bytes = max_reply_bytes
        self.hooks = hooks or Hooks()
        self.drift_log = drift_log

    def handle(self, flow: Flow, req: FlowRequest, deadline: Deadline | None = None) -> Outcome:
        """The reply to ``req``. ``deadline`` (started when the request arrived) bounds the
        handler's lookups; the caller bounds the Redis calls with it too (``redis_budget.within``).
        A request from another Flow JSON than the one served (``flows.drift``) is answered all the
        same, as well as this JSON allows; the outcome says which drift it showed."""
        kinds = drift.detect(flow, req)
        drift.note_quietly(self.drift_log, flow, req, kinds)
        outcome = self._handle(flow, req, deadline)
        outcome.drift = kinds
        return outcome

    def _handle(self, flow: Flow, req: FlowRequest, deadline: Deadline | None) -> Outcome:
        if req.action == "ping":
            return Outcome(200, json_bytes(PING_REPLY), "ping")
        token = req.flow_token
        if req.is_error_notification:
            return self._acknowledge(flow, req)
        check = None
        if token is None:
            log.warning("flow=%s action=%s request without flow_token", flow.name, req.action)
        else:
            # Only a screen of the Flow JSON is recorded: the request's text is anyone's.
            check = _TokenCheck(self, flow, token, req.screen if flow.has_screen(req.screen) else None)
        try:
            return self._dispatch(flow, req, deadline or Deadline(self.deadline_seconds), check)
        except _Refused:
            return self._refused(flow, token, check.visit)

    def _refused(self, flow: Flow, token: str, visit: Visit) -> Outcome:
        log.info("flow=%s token=%s refused: session %s", flow.name, short(token), visit.state)
        self.hooks.refused(flow.name, token, visit.state)
        return self._refuse(REFUSALS.get(visit.state, REFUSALS["expired"]))

    def _acknowledge(self, flow: Flow, req: FlowRequest) -> Outcome:
        key = req.error_key
        log.warning("flow=%s token=%s screen=%s client error notification: %s",
                    flow.name, short(req.flow_token), _cut(req.screen), key[:80])
        if req.flow_token:
            self._quietly(self.sessions.move, req.flow_token, "failed", ("sent", "opened", "in_progress"),
                          event="failed", detail=f"client error: {key[:200]}")
            self.hooks.client_error(flow.name, req.flow_token, key[:200])
        return Outcome(200, json_bytes(ACK_REPLY), "ack")

    def _dispatch(self, flow: Flow, req: FlowRequest, deadline: Deadline, check) -> Outcome:
        here = req.screen if flow.has_screen(req.screen) else flow.entry_screen
        handler = flow.handler_for(req.action, req.screen)
        if handler is None:
            if req.action == "data_exchange":
                log.warning("flow=%s no handler for screen=%s", flow.name, _cut(req.screen))
                return self._reply(flow, req, Screen(here, error_message=UNKNOWN_STEP), "unknown_screen",
                                   check=check)
            # INIT and BACK without a handler: show the screen as the Flow JSON defines it.
            return self._reply(flow, req, Screen(here), "default", check=check)
        ctx = Context(request=req, flow=flow, deps=self.deps, deadline=deadline,
                      sessions=_CheckedSessions(self.sessions, check) if check else None,
                      before_effect=check)
        try:
            result = handler(ctx)
        except _Refused:
            raise
        except RedisError as exc:
            # Reads degrade by themselves (carried values, slots, the lookup cache); what reaches
            # here is a write the handler needs (a hold, a booking): say so, the user can retry.
            redis_unavailable(log, "handler's write", exc, "the screen asks to retry", flow=flow.name,
                              token=short(req.flow_token), screen=_cut(req.screen))
            return self._reply(flow, req, Screen(here, error_message=STORAGE_UNAVAILABLE),
                               "storage_unavailable", check=check)
        except Exception:  # a bug in a flow must not surface as a 500: the user can retry
            log.exception("flow=%s token=%s screen=%s handler raised", flow.name,
                          short(req.flow_token), _cut(req.screen))
            return self._reply(flow, req, Screen(here, error_message=GENERIC_ERROR), "handler_error",
                               check=check)
        if check is not None and check.refused:  # a handler that caught _Refused is refused all the same
            raise _Refused()
        if ctx.lookup_failures == LOOKUP_FAILURES_BEFORE_FALLBACK:
            self.hooks.lookups_failing(flow.name, req.flow_token)
        return self._reply(flow, req, result, "screen", carry=ctx.to_carry, check=check)

    def _reply(self, flow: Flow, req: FlowRequest, result, event: str, carry: dict | None = None,
               check=None) -> Outcome:
        """The reply, and what it changes on the session written in one round trip (carried
        values with the screen shown, or with the completion) before the reply leaves. A token
        not checked yet is checked in that same round trip, and a refusal discards the reply."""
        here = req.screen if flow.has_screen(req.screen) else flow.entry_screen
        token = req.flow_token
        if isinstance(result, TokenRejected):
            if check is not None:
                check()  # the visit is recorded (and a closed token says so) as before the handler
            return self._refuse(result.message)
        if isinstance(result, Finish):
            plaintext = json_bytes(result.to_json(token))
            if token:
                moved = self._commit(check, token, carry=carry, move=COMPLETE)
                if moved:
                    self.hooks.completed(flow.name, token)
            return Outcome(200, plaintext, "finish", "SUCCESS")
        if not isinstance(result, Screen) or not flow.has_screen(result.name):
            log.error("flow=%s handler for screen=%s returned %r, not a screen of the Flow JSON",
                      flow.name, _cut(req.screen), getattr(result, "name", type(result).__name__))
            result, event = Screen(here, error_message=GENERIC_ERROR), "handler_error"
        elif self.check_replies and event == "screen":
            problems = flow.reply_problems(req.screen, req.action, result.name, result.data)
            if problems:
                log.error("flow=%s handler for screen=%s: %s", flow.name, _cut(req.screen),
                          "; ".join(problems))
                result, event = Screen(here, error_message=GENERIC_ERROR), "handler_error"
        plaintext = json_bytes(result.to_json())
        if len(plaintext) > self.max_reply_bytes:
            log.error("flow=%s screen=%s reply of %d bytes is over the %d byte limit",
                      flow.name, result.name, len(plaintext), self.max_reply_bytes)
            result, event = Screen(here, error_message=GENERIC_ERROR), "reply_too_large"
            plaintext = json_bytes(result.to_json())
        if token:
            # The request's own screen was recorded by the visit before the handler ran.
            shown = (flow.name, result.name) if result.name != req.screen else None
            self._commit(check, token, carry=carry, shown=shown)
        return Outcome(200, plaintext, event, result.name)

    def _commit(self, check, token: str, **changes):
        """``SessionStore.commit``, with the token's visit folded in when nothing checked it yet
        (raises _Refused when that visit refuses it: nothing was written)."""
        if check is None or check.done:
            return self._quietly(self.sessions.commit, token, **changes)
        check.done = True
        answer = self._quietly(self.sessions.visit_and_commit, token, check.flow.name, check.screen,
                               check.now, **changes)
        if answer is None:
            return None
        check.visit, moved = answer
        check.opened()
        if check.refused:
            raise _Refused()
        return moved

    @staticmethod
    def _quietly(call, *args, **kwargs):
        """Session bookkeeping must not cost the user their screen: with Redis down, serve
        without it (token checks included) and say so in the log."""
        try:
            return call(*args, **kwargs)
        except RedisError as exc:
            redis_unavailable(log, "sessions", exc, "serving without them")
            return None

    @staticmethod
    def _refuse(message: str) -> Outcome:
        return Outcome(427, json_bytes({"error_msg": message}), "refused")


class _Refused(BaseException):
    """The token's check refused it in the middle of a handler. A BaseException so that a
    handler's ``except Exception`` cannot swallow it; the engine answers 427."""


class _TokenCheck:
    """The session visit of one request, run once: as late as possible, so that a handler that
    only reads (a cached lookup, a local check) costs one round trip with the commit
    (``SessionStore.visit_and_commit``), and always before anything with an effect outside the
    request (a write, a call to a business API: ``Context.before_effect``), so a refused token
    never causes one. Called, it runs the visit and raises _Refused if the token is refused."""

    def __init__(self, engine: Engine, flow: Flow, token: str, screen: str | None):
        self.engine, self.flow, self.token, self.screen = engine, flow, token, screen
        self.now = time.time()  # the visit's time is the request's arrival, wherever it runs
        self.done, self.visit = False, None

    @property
    def refused(self) -> bool:
        return self.visit is not None and self.visit.refused

    def opened(self) -> None:
        if self.visit is not None and self.visit.opened_now:
            self.engine.hooks.opened(self.flow.name, self.token)

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.visit = self.engine._quietly(self.engine.sessions.visit, self.token, self.flow.name,
                                              self.screen, self.now)
            self.opened()
        if self.refused:
            raise _Refused()


class _CheckedSessions:
    """The session store as a handler sees it: reading carried values is free, anything else
    (marking a value unverified, counting a failure, a handler's own call) checks the token first."""

    def __init__(self, store: SessionStore, check: _TokenCheck):
        self._store, self._check = store, check

    def __getattr__(self, name: str):
        if name != "carried":
            self._check()
        return getattr(self._store, name)


def _cut(screen: str | None) -> str:
    """A screen name as a log line may carry it: whatever the client sent, one short field."""
    return (screen or "-")[:60]
