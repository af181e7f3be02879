"""The development channel: messages are recorded in Redis and logged, never sent.

Used when ``WHATSAPP_ACCESS_TOKEN`` is not set (``make run``). ``flask messages console`` lists the
outbox; the log line carries the masked number and the message type, never the text.
"""
from __future__ import annotations

import json
import logging
import secrets
import time

from flows.identity import User, coerce, masked
from messaging.cloud import envelope

log = logging.getLogger("flowgate.console")

OUTBOX = "fg:console:outbox"
OUTBOX_LENGTH = 500


class ConsoleChannel:
    name = "console"

    def __init__(self, redis):
        self.redis = redis

    def send(self, to: User | str, message: dict, callback: str | None = None,
             sender_id: str | None = None) -> str:
        wamid = f"wamid.console.{secrets.token_hex(8)}"
        entry = {"at": round(time.time(), 3), "id": wamid, "from_number": sender_id,
                 "body": envelope(to, message, callback)}
        pipe = self.redis.pipeline()
        pipe.lpush(OUTBOX, json.dumps(entry))
        pipe.ltrim(OUTBOX, 0, OUTBOX_LENGTH - 1)
        pipe.execute()
        log.info("console channel: %s message to %s recorded as %s", message.get("type"),
                 masked(coerce(to)), wamid)
        return wamid

    def outbox(self, limit: int = 20) -> list[dict]:
        """Newest first."""
        return [json.loads(x) for x in self.redis.lrange(OUTBOX, 0, max(limit, 1) - 1)]
