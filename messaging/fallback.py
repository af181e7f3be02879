"""Where a message that could not be delivered is handed over.

The recovery issue builds the fallback logic (a template when the 24 h window is closed, another
channel, a human). Until then ``hand_over`` is the single entry point: it records the case on the
session timeline (when a session is known) and in a capped Redis list the fallback worker will
drain, and logs it without personal data.
"""
from __future__ import annotations

import json
import logging
import time

from flows.identity import User, coerce, masked
from flows.sessions import short

log = logging.getLogger("flowgate.fallback")

PENDING = "fg:fallback:pending"
PENDING_LENGTH = 10_000


def hand_over(redis, sessions, *, reason: str, to: User | str | None, token: str | None = None,
              message_id: str | None = None, code: int | None = None, detail: str = "") -> None:
    """``reason``: needs_template | permanent | failed_status | unreachable_no_phone |
    unknown_outcome (an attempt died mid-send, or got no answer: the message may or may not have
    arrived and is not sent again, ``workers/effects.py``; ``detail`` names the effect). ``to``: the
    user (phone, BSUID or both); ``sessions`` may be None when the caller notes the session itself."""
    user = _user(to)
    case = {"at": round(time.time(), 3), "reason": reason, "to": user.phone if user else None,
            "user_id": (user.bsuid or user.parent_bsuid) if user else None, "flow_token": token,
            "message_id": message_id, "code": code, "detail": detail[:300]}
    pipe = redis.pipeline()
    pipe.lpush(PENDING, json.dumps(case))
    pipe.ltrim(PENDING, 0, PENDING_LENGTH - 1)
    pipe.execute()
    if token and sessions is not None:
        sessions.note(token, f"fallback_{reason}", f"code {code}" if code else detail[:200])
    log.warning("fallback: %s for %s token=%s code=%s", reason, masked(user), short(token), code)


def _user(to) -> User | None:
    try:
        return coerce(to) if to else None
    except ValueError:
        return None


def pending(redis, limit: int = 50) -> list[dict]:
    return [json.loads(x) for x in redis.lrange(PENDING, 0, limit - 1)]
