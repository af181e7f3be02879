"""Which Flow a message belongs to: our sent Flow messages, by wamid, and their sessions.

A completion normally names its session by ``flow_token``; some clients omit it (protocol doc 7.1),
and then the ``context.id`` of the reply — the wamid of the message that carried the Flow — is the
only link: every Flow message sent is linked to its token (``SessionStore.link_message``), and
``token_for`` reads that link.
"""
from __future__ import annotations

import time

from flows.sessions import TIMELINE_LENGTH, SessionStore, wamid_key

# KEYS: session, timeline. ARGV: flow, state, now, expires_at, ttl, wamid
# Creates the session only if absent: a token is issued once; a resend gets a new token.
_ISSUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'flow', ARGV[1], 'state', ARGV[2], 'created_at', ARGV[3],
           ARGV[2] .. '_at', ARGV[3], 'expires_at', ARGV[4], 'issued', '1', 'wamid', ARGV[6])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('RPUSH', KEYS[2], cjson.encode({at=tonumber(ARGV[3]), event=ARGV[2], detail=ARGV[6]}))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 1
"""


class Correlation:
    def __init__(self, redis, sessions: SessionStore, tombstone_seconds: int = 7 * 24 * 3600):
        self.redis = redis
        self.sessions = sessions
        self.ttl = sessions.lifetime + tombstone_seconds
        self._issue = redis.register_script(_ISSUE)

    def issue(self, token: str, flow: str, state: str = "sent", wamid: str = "") -> bool:
        """Create the session in ``state`` unless it exists; True when created."""
        now = time.time()
        key = SessionStore.key(token)
        return bool(self._issue(
            keys=[key, key + ":timeline"],
            args=[flow, state, f"{now:.3f}", f"{now + self.sessions.lifetime:.3f}", self.ttl, wamid,
                  TIMELINE_LENGTH]))

    def token_for(self, wamid: str | None) -> str | None:
        if not wamid:
            return None
        value = self.redis.get(wamid_key(wamid))
        return value.decode() if isinstance(value, bytes) else value
