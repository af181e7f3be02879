"""What we know of each WhatsApp user, shared by all processes: the 24-hour customer-service
window (free-form messages only within 24 h of the user's last message, protocol doc 8.3;
outside it only templates, error 131047), their recent texts, opt-out, their most recent Flow
sessions and completions.

Keyed by wa_id (the phone number in E.164 digits): it is the address we must send to, so it is
stored, but it never appears in a log line (``mask``).
"""
from __future__ import annotations

import json
import re
import time

WINDOW_SECONDS = 24 * 3600
RECENT_SESSIONS = 20
RETENTION = 90 * 24 * 3600
RECENT_TEXTS = 20

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
DEFAULT_STOP_WORDS = ("stop", "unsubscribe", "cancel", "opt out", "optout", "parar", "pare", "baja")


def mask(phone: str | None) -> str:
    """What a log line may carry of a phone number: country-ish prefix and last two digits."""
    digits = re.sub(r"\D", "", phone or "")
    return f"+{digits[:2]}…{digits[-2:]}" if len(digits) > 4 else "+…"


def normalise(phone: str) -> str:
    """wa_id form: digits only (Cloud API webhooks send it that way; WASender sends '+' or a JID)."""
    return re.sub(r"\D", "", phone.split("@", 1)[0])


class Contacts:
    def __init__(self, redis, stop_words=DEFAULT_STOP_WORDS):
        self.redis = redis
        self.stop_words = tuple(w.lower() for w in stop_words)
        self._inbound = redis.register_script(_INBOUND)

    @staticmethod
    def key(wa_id: str) -> str:
        return f"fg:contact:{normalise(wa_id)}"

    # --- 24-hour window ----------------------------------------------------------------------
    def inbound(self, wa_id: str, message_id: str = "", at: float | None = None, kind: str = "",
                text: str | None = None) -> None:
        """Any message from the user opens or refreshes the window; its text is kept (capped)."""
        at = time.time() if at is None else at
        key = self.key(wa_id)
        self._inbound(keys=[key], args=[f"{at:.3f}", message_id, RETENTION])
        if text is not None:
            entry = json.dumps({"at": at, "id": message_id, "type": kind, "text": text[:4096]})
            pipe = self.redis.pipeline()
            pipe.lpush(key + ":texts", entry)
            pipe.ltrim(key + ":texts", 0, RECENT_TEXTS - 1)
            pipe.expire(key + ":texts", RETENTION)
            pipe.execute()

    def last_inbound_at(self, wa_id: str) -> float | None:
        value = self.redis.hget(self.key(wa_id), "last_inbound_at")
        return float(value) if value and float(value) > 0 else None

    def in_window(self, wa_id: str, now: float | None = None) -> bool:
        last = self.last_inbound_at(wa_id)
        now = time.time() if now is None else now
        return last is not None and now - last < WINDOW_SECONDS

    window_open = in_window

    def recent_texts(self, wa_id: str) -> list[dict]:
        """Newest first."""
        return [json.loads(x) for x in self.redis.lrange(self.key(wa_id) + ":texts", 0, -1)]

    # --- opt-out -----------------------------------------------------------------------------
    def is_stop(self, text: str | None) -> bool:
        words = (text or "").strip().lower().strip(".!")
        return words in self.stop_words

    def opt_out(self, wa_id: str, channel: str, at: float | None = None) -> bool:
        """Record the opt-out; True if it is new (so the confirmation goes out once)."""
        at = time.time() if at is None else at
        new = self.redis.hsetnx(self.key(wa_id), "opted_out", f"{at:.3f}")
        if new:
            self.redis.hset(self.key(wa_id), "opt_out_channel", channel)
            self.redis.expire(self.key(wa_id), RETENTION)
        return bool(new)

    def opt_in(self, wa_id: str) -> bool:
        """The user asked for messages again (RESUME after STOP); True if they had opted out."""
        return bool(self.redis.hdel(self.key(wa_id), "opted_out", "opt_out_channel"))

    def opted_out(self, wa_id: str) -> bool:
        return bool(self.redis.hexists(self.key(wa_id), "opted_out"))

    # --- sessions per user -------------------------------------------------------------------
    def add_session(self, wa_id: str, token: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        key = self.key(wa_id) + ":sessions"
        pipe = self.redis.pipeline()
        pipe.zadd(key, {token: at})
        pipe.zremrangebyrank(key, 0, -RECENT_SESSIONS - 1)
        pipe.expire(key, RETENTION)
        pipe.execute()

    def recent_sessions(self, wa_id: str) -> list[str]:
        """Newest first."""
        return [t.decode() for t in self.redis.zrevrange(self.key(wa_id) + ":sessions", 0, -1)]

    # --- completions -------------------------------------------------------------------------
    def record_completion(self, wa_id: str, flow: str, at: float | None = None) -> None:
        """Kept per user and flow, so a completion without a flow_token still stops recovery."""
        at = time.time() if at is None else at
        self.redis.hset(self.key(wa_id), f"completed:{flow}", f"{at:.3f}")
        self.redis.expire(self.key(wa_id), RETENTION)

    def last_completion(self, wa_id: str, flow: str) -> float | None:
        raw = self.redis.hget(self.key(wa_id), f"completed:{flow}")
        return float(raw) if raw else None
