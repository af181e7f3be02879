"""Exactly-once side effects for jobs that may run more than once.

A job is retried after an error, recovered after its worker was SIGKILLed, or (rarely) run twice;
its side effects — a confirmation to the user, a POST to the business's system — must not be. Each
effect has a key derived from the WhatsApp message id (``confirm:<wamid>``) and a record in Redis:

    (absent) ──acquire──▶ running ──success──▶ done (result kept for KEEP_SECONDS)
                              │ └─known failure (nothing was sent)──▶ (absent): a retry may try again
                              └─ owner died: lease expired, state still ``running`` ──▶ ambiguous

``running`` carries an owner token and a *lease* (a separate key with a TTL longer than any attempt
may take). A second run that finds the lease alive gets ``EffectBusy`` (retried later, honouring the
lease's remaining time); one that finds the record ``done`` gets the recorded result and sends
nothing.

Residual risk, said plainly: the gap between "the API accepted it" and "the record says done" can
not be closed without the remote side's help — the Cloud API has no idempotency key. If the worker
dies inside that gap (SIGKILL mid-request, OOM, the dyno vanishing) the record stays ``running``
with a dead lease: we cannot know whether Meta sent the message. The caller picks the policy for
that case: ``SKIP`` (at most once: record ``unknown`` and hand it to a human/the fallback logic — the
choice for user-visible messages) or ``RESEND`` (at least once: the choice when the receiver dedupes
on the idempotency key we pass, as the completion forward does). A read timeout is the same gap
seen from a live worker; the Cloud API client classifies it as retryable (protocol doc 8.4), so a
timed-out confirmation may, rarely, arrive twice.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable

SKIP, RESEND = "skip", "resend"
KEEP_SECONDS = 8 * 24 * 3600  # longer than Meta's webhook retry window: a redelivery finds "done"

# KEYS: record, lease. ARGV: owner, lease_ms, now, keep_s
_ACQUIRE = """
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
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'started_at', ARGV[3], 'attempts_lost', '1')
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
        raw = self.redis.hgetall(self.keys(key)[0])
        return {k.decode(): v.decode() for k, v in raw.items()}

    def once(self, key: str, action: Callable[[], dict], *, safe_to_retry: tuple = (),
             when_lost: str = SKIP) -> Outcome:
        """Run ``action`` unless a run of this effect already succeeded (or may have).

        ``action`` returns a JSON-able dict recorded as the result. An exception in
        ``safe_to_retry`` means nothing reached the other side: the record is released and the
        exception propagates (RQ retries). Any other exception leaves the record ``running`` until
        its lease expires — that is the ambiguous case, resolved by ``when_lost``.
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
        except safe_to_retry:
            self._finish(keys=keys, args=[owner, "", now, self.keep_seconds])
            raise
        self._finish(keys=keys, args=[owner, json.dumps(result), f"{time.time():.3f}", self.keep_seconds])
        return Outcome("performed", result)


def _s(value):
    return value.decode() if isinstance(value, bytes) else value
