"""The one exactly-once mechanism for the side effects of jobs that may run more than once.

A job is retried after an error, recovered after its worker was SIGKILLed, or (rarely) run twice;
its side effects — a message to the user, a POST to the business's system — must not be. Each
effect has a key (``confirm:<wamid>``, ``rec-<origin>-<step>``, ...) and a record in Redis:

    (absent) ──acquire──▶ running ──success──▶ done (result kept for KEEP_SECONDS)
                              │ └─nothing reached the other side──▶ (absent): a retry may try again
                              └─ owner died: lease expired, state still ``running`` ──▶ ambiguous

``running`` carries an owner token and a *lease* (a separate key with a TTL longer than any attempt
may take, ``EFFECT_LEASE_SECONDS``). A second run that finds the lease alive gets ``EffectBusy``
(retried later, honouring the lease's remaining time); one that finds the record ``done`` gets the
recorded result and sends nothing.

The ambiguous case cannot be closed without the remote side's help: if the worker dies between
"the API accepted it" and "the record says done" (SIGKILL mid-request, OOM, the dyno vanishing),
nobody knows whether the message went out; neither the Cloud API nor WASender takes an
idempotency key. The caller picks the policy for it:

- ``SKIP`` (at most once): the record becomes ``unknown`` and the run that finds it gets the
  outcome ``lost``. Every message to a user uses it (``deliver_once`` below records the case as
  ``unknown_outcome`` on the session timeline and in the fallback list, for a person to look at).
- ``RESEND`` (at least once): a later run takes the effect over and sends again. Only where the
  receiver drops duplicates by the ``Idempotency-Key`` we send: the completion forward and the
  hand-over forward.

A live worker can meet the same gap: a read timeout means the request left and no answer came.
``nothing_sent`` tells that apart from errors where the other side answered (or was never
reached), so under ``SKIP`` a timed-out message is not sent again either.

This module lives in ``workers/`` because only jobs run more than once; ``messaging/`` makes one
attempt per call and knows nothing of retries, leases or jobs.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import requests
from flask import current_app

from flows.identity import coerce
from flows.identity import mask_phone as phone
from messaging import fallback
from messaging.graph import GraphError
from messaging.outbound import Outbound
from messaging.router import Refused
from messaging.wasender import WASenderError
from records import DatabaseError

SKIP, RESEND = "skip", "resend"
KEEP_SECONDS = 8 * 24 * 3600  # longer than Meta's webhook retry window: a redelivery finds "done"

# KEYS: record, lease. ARGV: owner, lease_ms, now, keep_s
_ACQUIRE = """
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  -- written by the former messaging/once.py (a JSON result, no state): that effect is done
  return {'done', redis.call('GET', KEYS[1])}
end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' or state == 'unknown' then
  return {state, redis.call('HGET', KEYS[1], 'result') or ''}
end
if state == 'running' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return {'busy', tostring(redis.call('PTTL', KEYS[2]))}
  end
  return {'ambiguous', redis.call('HGET', KEYS[1], 'owner') or ''}
end
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'started_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
return {'acquired', ''}
"""

# Take over a running record whose lease expired (RESEND policy), or mark it unknown (SKIP).
# KEYS: record, lease. ARGV: owner, lease_ms, now, keep_s, policy
_RESOLVE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if ARGV[5] == 'resend' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'started_at', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'attempts_lost', 1)
  redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
else
  redis.call('HSET', KEYS[1], 'state', 'unknown', 'result', '{"unknown": true}', 'ended_at', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# KEYS: record, lease. ARGV: owner, result_json (or '' to release), now, keep_s
_FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', 'done', 'result', ARGV[2], 'ended_at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


class EffectBusy(Exception):
    """Another attempt holds the effect's lease; RQ retries this job after ``retry_after``."""

    def __init__(self, key: str, retry_after: float):
        super().__init__(f"effect {key} is held by another attempt")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    # performed: this run did it | done: an earlier run did it | lost: this run found an earlier
    # attempt dead mid-way and recorded it as unknown (SKIP) | unknown: an earlier run did that
    state: str
    result: dict | None

    @property
    def performed_now(self) -> bool:
        return self.state == "performed"

    @property
    def ambiguous(self) -> bool:
        """Nobody knows whether it happened (and under SKIP it will not be tried again)."""
        return self.state in ("lost", "unknown")


class Effects:
    def __init__(self, redis, lease_seconds: float, keep_seconds: int = KEEP_SECONDS):
        self.redis = redis
        self.lease_ms = int(lease_seconds * 1000)
        self.keep_seconds = keep_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._resolve = redis.register_script(_RESOLVE)
        self._finish = redis.register_script(_FINISH)

    @staticmethod
    def keys(key: str) -> list[str]:
        return [f"fg:effect:{key}", f"fg:effect:{key}:lease"]

    def state(self, key: str) -> dict:
        record = self.keys(key)[0]
        if self.redis.type(record) == b"string":  # see _ACQUIRE
            return {"state": "done", "result": self.redis.get(record).decode()}
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(record).items()}

    def once(self, key: str, action: Callable[[], dict], *,
             safe_to_retry: tuple | Callable[[BaseException], bool] = (), when_lost: str = SKIP) -> Outcome:
        """Run ``action`` unless a run of this effect already succeeded (or may have).

        ``action`` returns a JSON-able dict recorded as the result. An exception matching
        ``safe_to_retry`` (exception classes, or a predicate) means nothing reached the other
        side: the record is released and the exception propagates (RQ retries). Any other
        exception leaves the record ``running`` until its lease expires — the ambiguous case,
        resolved by ``when_lost`` on the next run.
        """
        owner = secrets.token_hex(8)
        now = f"{time.time():.3f}"
        keys = self.keys(key)
        state, detail = (_s(x) for x in self._acquire(
            keys=keys, args=[owner, self.lease_ms, now, self.keep_seconds]))
        if state in ("done", "unknown"):
            return Outcome(state, json.loads(detail) if detail else None)
        if state == "busy":
            raise EffectBusy(key, max(int(detail), 0) / 1000 + 0.5)
        if state == "ambiguous":
            if not self._resolve(keys=keys, args=[owner, self.lease_ms, now, self.keep_seconds, when_lost]):
                raise EffectBusy(key, 1.0)  # another attempt resolved it first: look again later
            if when_lost == SKIP:
                return Outcome("lost", {"unknown": True})
        try:
            result = action()
        except BaseException as exc:
            if _matches(safe_to_retry, exc):
                self._finish(keys=keys, args=[owner, "", now, self.keep_seconds])
            raise
        self._finish(keys=keys, args=[owner, json.dumps(result), f"{time.time():.3f}", self.keep_seconds])
        return Outcome("performed", result)

    def settle(self, key: str) -> str | None:
        """For a run that will not perform the effect after all (it became moot meanwhile): the
        record's state once an attempt that died mid-way is closed as ``unknown`` — then ``lost``,
        as ``once`` says under SKIP (a record left ``running`` would never be looked at again, and
        the case never recorded). None: never attempted.
        ``EffectBusy`` while an attempt's lease holds (it may yet finish, or be found dead later).
        """
        keys = self.keys(key)
        state = self.state(key).get("state")
        if state != "running":
            return state
        left = self.redis.pttl(keys[1])
        if left > 0:
            raise EffectBusy(key, left / 1000 + 0.5)
        if not self._resolve(keys=keys,
                             args=["", self.lease_ms, f"{time.time():.3f}", self.keep_seconds, SKIP]):
            raise EffectBusy(key, 1.0)  # it changed meanwhile (finished, or resolved by another run)
        return "lost"


def nothing_sent(exc: BaseException) -> bool:
    """True when a failed send certainly did not reach the user: the router refused it, the API
    answered with an error or could not be reached, or the consent check before it could not read
    the database. False for a read timeout, where the request left and no answer came back (the
    transports raise their error inside the ``except`` for the ``requests`` exception, so it is
    the error's context)."""
    if isinstance(exc, (Refused, DatabaseError)):  # the consent ledger is read before a send, never after
        return True
    if isinstance(exc, (GraphError, WASenderError)):
        return not isinstance(exc.__context__, requests.ReadTimeout)
    return False


def deliver_once(out: Outbound, *, token: str | None, final: bool = False, via: str | None = None,
                 opt_out_notice: bool = False) -> Outcome:
    """Send ``out`` to the user through the router, at most once under ``out.key`` (``SKIP``).

    The outcome's ``result`` is the delivery record (channel, message_id, detail) of this run or
    an earlier one. When an earlier attempt died mid-send (or timed out waiting for the answer)
    nothing is sent, the outcome is ``ambiguous``, and the first run to find it hands the case
    over as ``unknown_outcome`` (``token``'s timeline, the fallback list). ``Refused`` and
    retryable channel errors propagate with the effect released, as nothing was sent.
    """
    ext = current_app.extensions
    outcome = Effects(ext["redis"], current_app.config["EFFECT_LEASE_SECONDS"]).once(
        out.key, lambda: ext["router"].deliver(out, final_attempt=final, via=via,
                                               opt_out_notice=opt_out_notice).to_dict(),
        safe_to_retry=nothing_sent, when_lost=SKIP)
    if outcome.state == "lost":
        _hand_over_unknown(out.key, out.to, token)
    record_sent(outcome.result, out.to, key=out.key, token=token or out.flow_token)
    return outcome


def record_sent(delivery: dict | None, to, *, key: str, token: str | None) -> None:
    """Into the outbound message log (SQL), after the effect: written by every run that finds the
    message sent (this one or an earlier one), so a database error here fails the job, RQ retries
    it, the effect is found done and the row is written then, once (unique on the message id)."""
    message_id = (delivery or {}).get("message_id") or (delivery or {}).get("wamid")
    if not message_id:
        return
    user = coerce(to) if to else None
    current_app.extensions["records"].messages.sent(
        str(message_id), channel=str(delivery.get("channel") or "-"),
        kind=delivery.get("detail") or delivery.get("kind"), template=delivery.get("template"), key=key,
        flow_token=token,
        phone=user.phone if user else None, user_id=(user.bsuid or user.parent_bsuid) if user else None)


def settle_delivery(key: str, to, *, token: str | None) -> str | None:
    """``deliver_once``'s counterpart for a message its job decided not to send after all (a
    recovery step superseded, a user who completed or opted out meanwhile): an earlier attempt
    that died mid-send is recorded and handed over all the same (``unknown_outcome``), as the
    message may have reached the user. Returns ``Effects.settle``'s state."""
    state = Effects(current_app.extensions["redis"], current_app.config["EFFECT_LEASE_SECONDS"]).settle(key)
    if state == "lost":
        _hand_over_unknown(key, to, token)
    return state


def _hand_over_unknown(key: str, to, token: str | None) -> None:
    ext = current_app.extensions
    fallback.hand_over(ext["redis"], ext["sessions"], reason="unknown_outcome", to=to, token=token,
                       # the key names the effect (rec-<origin>-step1, stop-<phone>): no whole phone
                       detail=_masked_key(key, coerce(to) if to else None))


def _masked_key(key: str, user) -> str:
    for ident in (user.phone, user.bsuid, user.parent_bsuid) if user else ():
        if ident:
            key = key.replace(ident, phone(ident))
    return key


def _matches(safe_to_retry, exc: BaseException) -> bool:
    if isinstance(safe_to_retry, tuple):
        return isinstance(exc, safe_to_retry)
    return bool(safe_to_retry(exc))


def _s(value):
    return value.decode() if isinstance(value, bytes) else value
