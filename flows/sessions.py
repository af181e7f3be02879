"""Flow sessions in Redis, keyed by flow token, shared by every process.

One hash per token (``fg:session:<token>``) and a capped timeline list beside it. Every state
change is one Lua script, so the endpoint, webhook jobs and recovery jobs can race from any dyno
and the session still moves through the state machine below, never around it.

    sent → opened → in_progress (screen X) → completed | failed | expired | revoked
    opened / in_progress → abandoned → recovering → recovered | gave_up
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from redis.exceptions import NoScriptError

from flows.identity import User, coerce, session_fields

# Tokens in these states get 427 from the endpoint.
CLOSED = ("completed", "expired", "revoked", "gave_up")
STATES = (
    "sent", "opened", "in_progress", "completed", "failed", "expired", "revoked",
    "abandoned", "recovering", "recovered", "gave_up",
)
TIMELINE_LENGTH = 50
# A tombstone outlives the session so an expired token still reads "expired", not "unknown".
TOMBSTONE_SECONDS = 7 * 24 * 3600

# KEYS: session, timeline. ARGV: token, flow, screen, now, lifetime, strict, tombstone, timeline_max
# Returns {state, created(0/1), opened_now(0/1)}: the state after the visit (or the closed state
# that refuses it), and whether this visit is the session's first opening.
_VISIT = """
local s = KEYS[1]
local now = tonumber(ARGV[4])
local state = redis.call('HGET', s, 'state')
local created = 0
if not state then
  if ARGV[6] == '1' then return {'unknown', 0, 0} end
  redis.call('HSET', s, 'flow', ARGV[2], 'state', 'opened', 'created_at', ARGV[4],
             'opened_at', ARGV[4], 'expires_at', tostring(now + tonumber(ARGV[5])), 'issued', '0')
  redis.call('EXPIRE', s, tonumber(ARGV[5]) + tonumber(ARGV[7]))
  redis.call('RPUSH', KEYS[2], cjson.encode({at=now, event='opened', detail='first seen'}))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[7]))
  state = 'opened'
  created = 1
end
-- A token replaced by a recovery resend is closed, whatever its chain's state says.
if redis.call('HEXISTS', s, 'replaced_by') == 1 and state ~= 'completed' then return {'revoked', 0, 0} end
if state == 'completed' or state == 'expired' or state == 'revoked' or state == 'gave_up' then
  return {state, 0, 0}
end
local expires = tonumber(redis.call('HGET', s, 'expires_at') or '0')
if expires > 0 and now > expires then
  redis.call('HSET', s, 'state', 'expired', 'updated_at', ARGV[4])
  redis.call('RPUSH', KEYS[2], cjson.encode({at=now, event='expired'}))
  return {'expired', 0, 0}
end
local opened_now = created
if state == 'sent' then
  opened_now = 1
  redis.call('HSET', s, 'state', 'opened', 'opened_at', ARGV[4])
  redis.call('RPUSH', KEYS[2], cjson.encode({at=now, event='opened'}))
  state = 'opened'
end
if ARGV[3] ~= '' and redis.call('HGET', s, 'screen') ~= ARGV[3] then
  redis.call('HSET', s, 'screen', ARGV[3])
  redis.call('RPUSH', KEYS[2], cjson.encode({at=now, event='screen', detail=ARGV[3]}))
  if state == 'opened' or state == 'failed' then
    redis.call('HSET', s, 'state', 'in_progress')
    state = 'in_progress'
  end
end
redis.call('HSET', s, 'updated_at', ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[8]), -1)
return {state, created, opened_now}
"""

# KEYS: session, timeline. ARGV: to_state, allowed_from (comma list, '' = any), now, event, detail,
# timeline_max
# Returns the previous state when the move happened, or false.
_MOVE = """
local prev = redis.call('HGET', KEYS[1], 'state')
if not prev then return false end
if ARGV[2] ~= '' and not string.find(',' .. ARGV[2] .. ',', ',' .. prev .. ',', 1, true) then
  return false
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[3], ARGV[1] .. '_at', ARGV[3])
redis.call('RPUSH', KEYS[2], cjson.encode({at=tonumber(ARGV[3]), event=ARGV[4], detail=ARGV[5]}))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
return prev
"""


# The endpoint's usual request in one round trip (an optimistic check-and-commit): the visit above,
# and unless it refuses the token, the reply's carried values and then the visit of the screen shown
# or the move. The two scripts run verbatim as functions (their KEYS/ARGV are parameters here).
# KEYS: session, timeline, carried. ARGV: the 8 visit args, then mode ('shown' | 'move' | ''), the
# 8 args of that second visit or 6 of the move, then carry TTL, then field, value, field, value, ...
# Returns {state, created, opened_now, previous state of the move or ''}.
_VISIT_COMMIT = (
    "local function visit(KEYS, ARGV)\n" + _VISIT + "\nend\n"
    "local function move(KEYS, ARGV)\n" + _MOVE + "\nend\n" + """
local function slice(from, n)
  local out = {}
  for i = 1, n do out[i] = ARGV[from + i - 1] end
  return out
end
local keys = {KEYS[1], KEYS[2]}
local v = visit(keys, slice(1, 8))
local st = v[1]
if st == 'completed' or st == 'expired' or st == 'revoked' or st == 'gave_up' or st == 'unknown' then
  return {st, v[2], v[3], ''}
end
local mode = ARGV[9]
local n = (mode == 'shown' and 8) or (mode == 'move' and 6) or 0
local at = 10 + n
if #ARGV > at then
  for i = at + 1, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[at]))
end
local prev = ''
if mode == 'shown' then
  visit(keys, slice(10, 8))
elseif mode == 'move' then
  prev = move(keys, slice(10, 6)) or ''
end
return {st, v[2], v[3], prev}
""")


def wamid_key(wamid: str) -> str:
    """wamid of a Flow message we sent → its token (a completion without flow_token names it)."""
    return f"fg:flowmsg:{wamid}"


def new_token() -> str:
    """Unguessable and safe in RQ job ids and URLs."""
    return "fg_" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


def short(token: str | None) -> str:
    """What a log line may carry of a token."""
    return f"{token[:9]}…" if token else "-"


@dataclass(frozen=True)
class Visit:
    state: str
    created: bool
    opened_now: bool = False

    @property
    def refused(self) -> bool:
        return self.state in CLOSED or self.state == "unknown"


class SessionStore:
    def __init__(self, redis, lifetime: int, strict: bool = False):
        self.redis = redis
        self.lifetime = lifetime
        self.strict = strict
        self._visit = redis.register_script(_VISIT)
        self._move = redis.register_script(_MOVE)
        self._visit_commit = redis.register_script(_VISIT_COMMIT)

    @staticmethod
    def key(token: str) -> str:
        return f"fg:session:{token}"

    def _keys(self, token: str) -> list[str]:
        return [self.key(token), self.key(token) + ":timeline"]

    def visit(self, token: str, flow: str, screen: str | None, now: float | None = None) -> Visit:
        """Record an endpoint request; create the session on first sight unless policy is strict."""
        state, created, opened_now = self._visit(keys=self._keys(token),
                                                 args=self._visit_args(token, flow, screen, now))
        return Visit(state=_s(state), created=bool(created), opened_now=bool(opened_now))

    def _visit_args(self, token: str, flow: str, screen: str | None, now: float | None) -> list:
        now = time.time() if now is None else now
        return [token, flow, screen or "", f"{now:.3f}", self.lifetime, int(self.strict),
                TOMBSTONE_SECONDS, TIMELINE_LENGTH]

    def commit(self, token: str, *, carry: dict | None = None, shown: tuple[str, str] | None = None,
               move: dict | None = None):
        """What one reply changes, in one round trip: the values it carries, then either the
        screen it shows (``shown=(flow, screen)``, a visit) or a state change (``move``: the
        keyword arguments of ``move()``). Returns the move's answer (the previous state, or None
        when the move was not allowed); None without a move.

        A pipeline rather than one script per combination; the script runs by its SHA, loaded
        on the rare NOSCRIPT (a restarted Redis) and run again, which the HSET before it
        tolerates: writing the same values twice changes nothing.
        """
        script, args = None, None
        if move is not None:
            script, args = self._move, self._move_args(**move)
        elif shown is not None:
            script, args = self._visit, self._visit_args(token, shown[0], shown[1], None)
        if not carry and script is None:
            return None
        pipe = self.redis.pipeline(transaction=False)
        if carry:
            self._queue_carry(pipe, token, carry)
        if script is not None:
            pipe.evalsha(script.sha, 2, *self._keys(token), *args)
        results = pipe.execute(raise_on_error=False)
        answer = results.pop() if script is not None else None
        for result in results:  # the carry's HSET and EXPIRE
            if isinstance(result, Exception):
                raise result
        if isinstance(answer, NoScriptError):
            answer = script(keys=self._keys(token), args=args)
        elif isinstance(answer, Exception):
            raise answer
        return _s(answer) if (move is not None and answer) else None

    def visit_and_commit(self, token: str, flow: str, screen: str | None, now: float, *,
                         carry: dict | None = None, shown: tuple[str, str] | None = None,
                         move: dict | None = None) -> tuple[Visit, str | None]:
        """``visit()`` then, unless it refuses the token, ``commit()``: one round trip, for a
        request whose handler did nothing but read. ``now`` is when the request arrived (the
        visit's time, as if it had run first). Returns the visit and the move's answer."""
        if move is not None:
            mode, second = "move", self._move_args(**move)
        elif shown is not None:
            mode, second = "shown", self._visit_args(token, shown[0], shown[1], None)
        else:
            mode, second = "", []
        pairs = [x for k, v in (carry or {}).items() for x in (k, json.dumps(v))]
        args = [*self._visit_args(token, flow, screen, now), mode, *second,
                self.lifetime + TOMBSTONE_SECONDS, *pairs]
        state, created, opened_now, prev = self._visit_commit(
            keys=[*self._keys(token), self.key(token) + ":carried"], args=args)
        visit = Visit(state=_s(state), created=bool(created), opened_now=bool(opened_now))
        return visit, (_s(prev) or None) if move is not None else None

    def issue(self, token: str, flow: str, user: User | str | None, prefill: dict | None = None,
              origin: str | None = None, now: float | None = None) -> None:
        """A session for a Flow we are about to send: state ``sent``, accepted under strict policy.

        ``user``: who it goes to (a phone number, a BSUID or both: ``phone`` / ``bsuid`` fields,
        ``flows.identity.of_session``). ``origin`` is the first session of a recovery chain (the
        one whose ladder is running).
        """
        now = time.time() if now is None else now
        key, timeline = self._keys(token)
        ttl = self.lifetime + TOMBSTONE_SECONDS
        fields = {"flow": flow, "state": "sent", "created_at": f"{now:.3f}", "sent_at": f"{now:.3f}",
                  "expires_at": f"{now + self.lifetime:.3f}", "issued": "1", "origin": origin or token}
        fields.update(session_fields(coerce(user)) if user else {})
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl)
        pipe.rpush(timeline, json.dumps({"at": round(now, 3), "event": "sent",
                                         "detail": f"origin {short(origin)}" if origin else ""}))
        pipe.expire(timeline, ttl)
        pipe.execute()
        if prefill:
            self.carry(token, prefill)

    def set(self, token: str, **fields) -> None:
        self.redis.hset(self.key(token), mapping={k: str(v) for k, v in fields.items()})

    def link_message(self, token: str, wamid: str) -> None:
        """Remember which token a sent Flow message carried: a completion without a flow_token is
        matched through its ``context.id`` (the wamid of that message)."""
        pipe = self.redis.pipeline()
        pipe.set(wamid_key(wamid), token, ex=self.lifetime + TOMBSTONE_SECONDS)
        pipe.hset(self.key(token), "wamid", wamid)
        pipe.execute()

    def move(self, token: str, to: str, allowed_from=(), event: str | None = None,
             detail: str = "", now: float | None = None) -> str | None:
        """Atomic transition; returns the previous state, or None if the move was not allowed."""
        prev = self._move(keys=self._keys(token), args=self._move_args(to, allowed_from, event, detail, now))
        return _s(prev) if prev else None

    @staticmethod
    def _move_args(to: str, allowed_from=(), event: str | None = None, detail: str = "",
                   now: float | None = None) -> list:
        assert to in STATES, to
        now = time.time() if now is None else now
        return [to, ",".join(allowed_from), f"{now:.3f}", event or to, detail, TIMELINE_LENGTH]

    def note(self, token: str, event: str, detail: str = "") -> None:
        """Append to the timeline without changing state (sends, errors, deliveries)."""
        entry = json.dumps({"at": round(time.time(), 3), "event": event, "detail": detail})
        timeline = self.key(token) + ":timeline"
        pipe = self.redis.pipeline()
        pipe.rpush(timeline, entry)
        pipe.ltrim(timeline, -TIMELINE_LENGTH, -1)
        pipe.execute()

    def count_lookup_failure(self, token: str) -> int:
        return int(self.redis.hincrby(self.key(token), "lookup_failures", 1))

    def get(self, token: str) -> dict | None:
        raw = self.redis.hgetall(self.key(token))
        return {_s(k): _s(v) for k, v in raw.items()} if raw else None

    def timeline(self, token: str) -> list[dict]:
        return [json.loads(x) for x in self.redis.lrange(self.key(token) + ":timeline", 0, -1)]

    def carried(self, token: str) -> dict:
        raw = self.redis.hgetall(self.key(token) + ":carried")
        return {_s(k): json.loads(v) for k, v in raw.items()}

    def carry(self, token: str, values: dict) -> None:
        """Merge values the user entered (read back for prefill on resend); one field each, so
        concurrent requests never overwrite each other's values."""
        if not values:
            return
        pipe = self.redis.pipeline(transaction=False)
        self._queue_carry(pipe, token, values)
        pipe.execute()

    def _queue_carry(self, pipe, token: str, values: dict) -> None:
        key = self.key(token) + ":carried"
        pipe.hset(key, mapping={k: json.dumps(v) for k, v in values.items()})
        pipe.expire(key, self.lifetime + TOMBSTONE_SECONDS)

    # --- values accepted without an answer (a lookup with the open policy) ---------------------
    def mark_unverified(self, token: str, field: str, lookup: str, value: str, flow: str) -> None:
        """Remember a value accepted unchecked, for workers/recheck.py to look up again later."""
        key = self.key(token) + ":unverified"
        entry = json.dumps({"lookup": lookup, "value": value, "flow": flow, "at": round(time.time(), 3)})
        pipe = self.redis.pipeline()
        pipe.hset(key, field, entry)
        pipe.expire(key, self.lifetime + TOMBSTONE_SECONDS)
        pipe.execute()

    def clear_unverified(self, token: str, field: str) -> None:
        """The field was answered after all (the user changed it, the API came back)."""
        self.redis.hdel(self.key(token) + ":unverified", field)

    def unverified(self, token: str) -> dict:
        raw = self.redis.hgetall(self.key(token) + ":unverified")
        return {_s(k): json.loads(v) for k, v in raw.items()}

    def settle_unverified(self, token: str, field: str, verdict: str) -> bool:
        """Record a re-check's verdict (verified | rejected) once; False if already settled."""
        key = self.key(token)
        pipe = self.redis.pipeline()
        pipe.hdel(key + ":unverified", field)
        pipe.hset(key + ":rechecked", field, verdict)
        pipe.expire(key + ":rechecked", self.lifetime + TOMBSTONE_SECONDS)
        removed = pipe.execute()[0]
        if removed:
            self.note(token, f"recheck_{verdict}", field)
        return bool(removed)

    def rechecked(self, token: str) -> dict:
        """field → verified | rejected: what the follow-up message needs to know."""
        return {_s(k): _s(v) for k, v in self.redis.hgetall(self.key(token) + ":rechecked").items()}


def _s(value):
    return value.decode() if isinstance(value, bytes) else value
