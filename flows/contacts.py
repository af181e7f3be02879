"""What we know of a user from their inbound messages: the 24 h customer-service window, and
their recent texts (kept for the recovery issue: STOP / opt-out).

Free-form messages (text, interactive Flow messages) may only be sent within 24 h of the user's
last message (protocol doc 8.3); outside it only templates (error 131047).
"""
from __future__ import annotations

import json
import time

WINDOW_SECONDS = 24 * 3600
KEEP_SECONDS = 30 * 24 * 3600
RECENT_TEXTS = 20


def _key(wa_id: str) -> str:
    return f"fg:contact:{wa_id}"


# KEYS: contact. ARGV: at, message_id, keep_seconds. The window only moves forward: an old
# message redelivered by Meta must not move it back.
_INBOUND = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'last_inbound_at') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'last_inbound_at', ARGV[1], 'last_message_id', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class Contacts:
    def __init__(self, redis):
        self.redis = redis
        self._inbound = redis.register_script(_INBOUND)

    def inbound(self, wa_id: str, message_id: str, at: float, kind: str, text: str | None = None) -> None:
        """Record an inbound message; the window only moves forward (redeliveries arrive late)."""
        key = _key(wa_id)
        self._inbound(keys=[key], args=[f"{at:.3f}", message_id, KEEP_SECONDS])
        if text is not None:
            entry = json.dumps({"at": at, "id": message_id, "type": kind, "text": text[:4096]})
            pipe = self.redis.pipeline()
            pipe.lpush(key + ":texts", entry)
            pipe.ltrim(key + ":texts", 0, RECENT_TEXTS - 1)
            pipe.expire(key + ":texts", KEEP_SECONDS)
            pipe.execute()

    def last_inbound_at(self, wa_id: str) -> float | None:
        value = self.redis.hget(_key(wa_id), "last_inbound_at")
        return float(value) if value and float(value) > 0 else None

    def window_open(self, wa_id: str, now: float | None = None) -> bool:
        last = self.last_inbound_at(wa_id)
        now = time.time() if now is None else now
        return last is not None and now - last < WINDOW_SECONDS

    def recent_texts(self, wa_id: str) -> list[dict]:
        """Newest first."""
        return [json.loads(x) for x in self.redis.lrange(_key(wa_id) + ":texts", 0, -1)]
