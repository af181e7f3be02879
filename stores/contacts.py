"""What we know of each WhatsApp user, shared by all processes: the 24-hour customer-service
window (free-form messages only within 24 h of the user's last message, protocol doc 8.3;
outside it only templates, error 131047), their recent texts, opt-out, their most recent Flow
sessions and completions.

One record per person, whichever identifier a webhook carries (``flows.identity``): a phone
number, a business-scoped user ID (BSUID), or both. Aliases map each identifier to the record's
canonical key — ``fg:alias:p:<digits>`` and ``fg:alias:b:<bsuid>`` → key, the record is
``fg:contact:<key>``. A phone without an alias is its own key: that is where every record lived
before BSUIDs, so state written by earlier versions is found as it is. When one webhook shows two
records to be one person (a username user whose phone becomes known), ``learn`` points every
alias at one key and folds the other record into it: the opt-out still holds, the window still
counts, the sessions are all there.

Residual risk, said plainly: a write that resolved a key just before a merge moved that record
lands on the old key and is lost (one round trip wide); an opt-out re-checks its key afterwards.

Identifiers are stored, but never appear in a log line (``flows.identity.masked``).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

from redis.exceptions import WatchError

from flows.identity import User, coerce

WINDOW_SECONDS = 24 * 3600
RECENT_SESSIONS = 20
RETENTION = 90 * 24 * 3600
RECENT_TEXTS = 20
PROFILE = ("phone", "bsuid", "parent_bsuid", "username")  # identity fields of a record

# KEYS: contact. ARGV: at, message_id, keep_seconds. The window only moves forward: an old
# message redelivered by Meta, or webhooks out of order, must not move it back.
_INBOUND = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'last_inbound_at') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'last_inbound_at', ARGV[1], 'last_message_id', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# Fold one record into another. KEYS: from, into, from:texts, into:texts, from:sessions,
# into:sessions. ARGV: keep_seconds, recent_texts, recent_sessions. The later window and
# completions win, the earlier opt-out wins, texts and sessions are merged newest first.
_ABSORB = """
local function num(x) return tonumber(x or '0') or 0 end
local raw = redis.call('HGETALL', KEYS[1])
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
for f, v in pairs(h) do
  local cur = redis.call('HGET', KEYS[2], f)
  if f == 'last_inbound_at' then
    if num(v) > num(cur) then
      redis.call('HSET', KEYS[2], f, v, 'last_message_id', h['last_message_id'] or '')
    end
  elseif string.sub(f, 1, 10) == 'completed:' then
    if num(v) > num(cur) then redis.call('HSET', KEYS[2], f, v) end
  elseif f == 'opted_out' then
    if not cur or num(v) < num(cur) then
      redis.call('HSET', KEYS[2], f, v, 'opt_out_channel', h['opt_out_channel'] or '')
    end
  elseif f ~= 'last_message_id' and f ~= 'opt_out_channel' and not cur then
    redis.call('HSET', KEYS[2], f, v)
  end
end
local texts = redis.call('LRANGE', KEYS[4], 0, -1)
for _, t in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do table.insert(texts, t) end
if #texts > 0 then
  local at = {}
  for _, t in ipairs(texts) do at[t] = num(cjson.decode(t)['at']) end
  table.sort(texts, function(a, b) return at[a] > at[b] end)
  redis.call('DEL', KEYS[4])
  for i = 1, math.min(#texts, tonumber(ARGV[2])) do redis.call('RPUSH', KEYS[4], texts[i]) end
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[1]))
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('ZUNIONSTORE', KEYS[6], 2, KEYS[6], KEYS[5], 'AGGREGATE', 'MAX')
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -tonumber(ARGV[3]) - 1)
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[1]))
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1])) end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[5])
return #raw / 2
"""


def alias_key(kind: str, value: str) -> str:
    """``p`` for a phone (digits), ``b`` for a BSUID or a parent BSUID."""
    return f"fg:alias:{kind}:{value}"


def _ids(user: User) -> list[tuple[str, str]]:
    return [(k, v) for k, v in (("p", user.phone), ("b", user.bsuid), ("b", user.parent_bsuid)) if v]


def _default_key(user: User) -> str:
    return user.phone if user.phone else f"b:{user.bsuid or user.parent_bsuid}"


class Contacts:
    def __init__(self, redis, ledger=None):
        self.redis = redis
        # The consent ledger (records.consent.ConsentLedger), the authority on opt-outs: it lasts,
        # where this record expires 90 days after the user's last message. Without one (a tool
        # that has no database) the record's own mark is read.
        self.ledger = ledger
        self._inbound = redis.register_script(_INBOUND)
        self._absorb = redis.register_script(_ABSORB)

    @staticmethod
    def record(key: str) -> str:
        return f"fg:contact:{key}"

    # --- identity ------------------------------------------------------------------------------
    def resolve(self, who, enrich: bool = False) -> User:
        """The person behind a phone, a BSUID or a ``User``: the same value with ``key`` set (no
        writes). ``enrich``: the record's current identifiers win over the caller's (a session
        may hold a number the user has since changed); the caller's fill what the record lacks."""
        user = coerce(who)
        if not user.key:
            ids = _ids(user)
            if not ids:
                raise ValueError("no phone number and no BSUID")
            found = [_s(k) for k in self.redis.mget([alias_key(*i) for i in ids])]
            user = replace(user, key=next((k for k in found if k), None) or _default_key(user))
        if not enrich:
            return user
        return _enriched(user, self.redis.hmget(self.record(user.key), *PROFILE))

    def learn(self, who) -> User:
        """Everything one webhook tells about a person, linked to one record (merged if there
        were two). Returns the user with its key and the record's identifiers filled in."""
        user = coerce(who)
        ids = _ids(user)
        found = [_s(k) for k in self.redis.mget([alias_key(*i) for i in ids])] if ids else []
        if found and all(found) and len(set(found)) == 1:
            # Known, and linked already (every webhook after the first): two round trips.
            key = self.record(found[0])
            pipe = self.redis.pipeline(transaction=False)
            for i in ids:
                pipe.expire(alias_key(*i), RETENTION)
            fields = {k: getattr(user, k) for k in PROFILE if getattr(user, k)}
            pipe.hset(key, mapping=fields)
            pipe.expire(key, RETENTION)
            pipe.hmget(key, *PROFILE)
            return _enriched(replace(user, key=found[0]), pipe.execute()[-1])
        key = self._link(ids, user)
        return self.resolve(replace(user, key=key), enrich=True)

    def rename(self, before, after) -> User:
        """A user changed number or BSUID (system message, ``user_id_update``): the record moves
        to the new identifiers. The old BSUID keeps pointing at it (BSUIDs are not reused); the old
        phone number does not (a carrier may give it to someone else)."""
        before, after = coerce(before), coerce(after)
        old = self.resolve(before).key
        was_out = self.ledger is not None and self.ledger.opted_out(self.subjects(before))
        ids = _ids(after) + [i for i in _ids(before) if i[0] == "b" and i not in _ids(after)]
        # A new number is named when there is one (user_changed_number); a BSUID-only change keeps it.
        dropped = ([alias_key("p", before.phone)]
                   if before.phone and after.phone and before.phone != after.phone else [])
        key = self._link(ids, after, also=[old], drop=dropped)
        moved = self.resolve(replace(after, key=key), enrich=True)
        if self.ledger is not None:
            self._carry_consent(before, moved, was_out, dropped)
        return moved

    def _carry_consent(self, before: User, moved: User, was_out: bool, dropped: list[str]) -> None:
        """The ledger follows the person: their opt-out holds for their new identifiers, and a
        number they gave up is released (its next owner has not opted out)."""
        cause = f"rename:{'|'.join(v for _, v in _ids(before))}"[:200]
        if was_out:
            self.ledger.record([f"{k}:{v}" for k, v in _ids(moved)], "opt_out", "identity_change",
                               message_id=cause)
        if dropped and before.phone:
            self.ledger.record([f"p:{before.phone}"], "released", "identity_change", message_id=cause)

    def _link(self, ids: list[tuple[str, str]], profile: User, also=(), drop=()) -> str:
        aliases = [alias_key(*i) for i in ids]
        for _ in range(10):
            try:
                with self.redis.pipeline() as pipe:
                    pipe.watch(*aliases)
                    found = [_s(k) for k in pipe.mget(aliases)] if aliases else []
                    candidates = []  # the records these identifiers already have, phone first
                    for (kind, value), key in zip(ids, found):
                        # No alias yet: state may still sit under the identifier's own key (a
                        # number from before BSUIDs; a Flow sent to a number or a BSUID by the API).
                        implicit = value if kind == "p" else f"b:{value}"
                        if key is None and pipe.exists(*(self.record(implicit) + s
                                                         for s in ("", ":sessions", ":texts"))):
                            key = implicit
                        candidates.append(key)
                    existing = _unique(candidates)
                    target = existing[0] if existing else _default_key(profile)
                    if drop and target in {alias.rsplit(":", 1)[1] for alias in drop}:
                        target = _default_key(profile)  # keyed by a number the user gave up: re-key
                    sources = [k for k in _unique([*existing, *also]) if k != target]
                    moved = []  # aliases the merged records answer to, beyond this webhook's
                    for source in sources:
                        held = User(**dict(zip(PROFILE, map(_s, pipe.hmget(self.record(source), *PROFILE)))))
                        moved += [alias_key(*i) for i in _ids(held) if alias_key(*i) not in drop]
                    pipe.multi()
                    for alias in _unique(aliases + moved):
                        pipe.set(alias, target, ex=RETENTION)
                    if drop:
                        pipe.delete(*drop)
                    fields = {k: getattr(profile, k) for k in PROFILE if getattr(profile, k)}
                    if fields:
                        pipe.hset(self.record(target), mapping=fields)
                    pipe.expire(self.record(target), RETENTION)
                    pipe.execute()
                break
            except WatchError:
                continue  # another webhook for this person moved an alias: decide again
        else:
            raise RuntimeError("identity aliases kept changing; the job will be retried")
        for source in sources:
            self._absorb(keys=[self.record(source), self.record(target), self.record(source) + ":texts",
                               self.record(target) + ":texts", self.record(source) + ":sessions",
                               self.record(target) + ":sessions"],
                         args=[RETENTION, RECENT_TEXTS, RECENT_SESSIONS])
        return target

    def _key(self, who) -> str:
        return self.record(self.resolve(who).key)

    # --- 24-hour window ----------------------------------------------------------------------
    def inbound(self, who, message_id: str = "", at: float | None = None, kind: str = "",
                text: str | None = None) -> None:
        """Any message from the user opens or refreshes the window; its text is kept (capped)."""
        at = time.time() if at is None else at
        key = self._key(who)
        self._inbound(keys=[key], args=[f"{at:.3f}", message_id, RETENTION])
        if text is not None:
            entry = json.dumps({"at": at, "id": message_id, "type": kind, "text": text[:4096]})
            pipe = self.redis.pipeline()
            pipe.lpush(key + ":texts", entry)
            pipe.ltrim(key + ":texts", 0, RECENT_TEXTS - 1)
            pipe.expire(key + ":texts", RETENTION)
            pipe.execute()

    def last_inbound_at(self, who) -> float | None:
        value = self.redis.hget(self._key(who), "last_inbound_at")
        return float(value) if value and float(value) > 0 else None

    def in_window(self, who, now: float | None = None) -> bool:
        last = self.last_inbound_at(who)
        now = time.time() if now is None else now
        return last is not None and now - last < WINDOW_SECONDS

    window_open = in_window

    def recent_texts(self, who) -> list[dict]:
        """Newest first."""
        return [json.loads(x) for x in self.redis.lrange(self._key(who) + ":texts", 0, -1)]

    # --- opt-out -----------------------------------------------------------------------------
    def opt_out(self, who, channel: str, at: float | None = None, message_id: str | None = None) -> bool:
        """Record the opt-out (the ledger first: a job that fails there is retried); True if it
        is new (so the confirmation goes out once)."""
        at = time.time() if at is None else at
        user = coerce(who)
        new = None
        if self.ledger is not None:
            new = self.ledger.record(self.subjects(user), "opt_out", channel, at=at, message_id=message_id)
        key = self._key(user)
        marked = self._opt_out(key, channel, at)
        if not user.key and _ids(user) and self._key(user) != key:
            self._opt_out(self._key(user), channel, at)  # a merge moved the record meanwhile
        return marked if new is None else new

    def _opt_out(self, key: str, channel: str, at: float) -> bool:
        new = self.redis.hsetnx(key, "opted_out", f"{at:.3f}")
        if new:
            self.redis.hset(key, "opt_out_channel", channel)
            self.redis.expire(key, RETENTION)
        return bool(new)

    def opt_in(self, who, channel: str = "", message_id: str | None = None) -> bool:
        """The user asked for messages again (RESUME after STOP); True if they had opted out."""
        user = coerce(who)
        cleared = bool(self.redis.hdel(self._key(user), "opted_out", "opt_out_channel"))
        if self.ledger is None:
            return cleared
        subjects = self.subjects(user)
        if not self.ledger.opted_out(subjects):
            return False
        return self.ledger.record(subjects, "opt_in", channel or "-", message_id=message_id)

    def opted_out(self, who) -> bool:
        """Checked before every send, on every channel: the ledger, by every identifier the
        person's record knows (a STOP from their phone holds for their BSUID)."""
        if self.ledger is None:
            return bool(self.redis.hexists(self._key(who), "opted_out"))
        return self.ledger.opted_out(self.subjects(who))

    def subjects(self, who) -> list[str]:
        """The ledger's names for this person: each identifier the record and the caller know."""
        user = coerce(who)
        try:
            user = self.resolve(user, enrich=True) if _ids(user) else user
        except ValueError:
            pass
        return [f"{kind}:{value}" for kind, value in _ids(user)]

    # --- sessions per user -------------------------------------------------------------------
    def add_session(self, who, token: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        key = self._key(who) + ":sessions"
        pipe = self.redis.pipeline()
        pipe.zadd(key, {token: at})
        pipe.zremrangebyrank(key, 0, -RECENT_SESSIONS - 1)
        pipe.expire(key, RETENTION)
        pipe.execute()

    def recent_sessions(self, who) -> list[str]:
        """Newest first."""
        return [t.decode() for t in self.redis.zrevrange(self._key(who) + ":sessions", 0, -1)]

    # --- completions -------------------------------------------------------------------------
    def record_completion(self, who, flow: str, at: float | None = None) -> None:
        """Kept per user and flow, so a completion without a flow_token still stops recovery."""
        at = time.time() if at is None else at
        key = self._key(who)
        self.redis.hset(key, f"completed:{flow}", f"{at:.3f}")
        self.redis.expire(key, RETENTION)

    def last_completion(self, who, flow: str) -> float | None:
        raw = self.redis.hget(self._key(who), f"completed:{flow}")
        return float(raw) if raw else None


def _enriched(user: User, fields) -> User:
    """The record's identifiers (``PROFILE`` values, as read) win; the caller's fill the gaps."""
    record = User(**dict(zip(PROFILE, map(_s, fields))))
    if not record.phone and user.key.isdigit():
        record = replace(record, phone=user.key)  # a record from before BSUIDs: keyed by its phone
    return replace(record.merged(user), key=user.key)


def _unique(items) -> list:
    out = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def _s(value):
    return value.decode() if isinstance(value, bytes) else value
