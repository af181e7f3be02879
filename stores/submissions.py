"""Completed Flow submissions, kept in Redis for a retention period.

One JSON document per submission (``fg:submission:<id>``, with a TTL) and a sorted-set index by
time for listing; the id is derived from the WhatsApp message id, so storing the same completion
twice writes the same document.
"""
from __future__ import annotations

import json
import time

from flows.webhook import digest

INDEX = "fg:submissions"


def submission_id(message_id: str) -> str:
    return "sub_" + digest(message_id)[:24]


class SubmissionStore:
    def __init__(self, redis, retention_seconds: int):
        self.redis = redis
        self.retention = retention_seconds

    @staticmethod
    def key(sid: str) -> str:
        return f"fg:submission:{sid}"

    def save(self, document: dict) -> None:
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.set(self.key(document["id"]), json.dumps(document), ex=self.retention)
        # Scored by when it was stored (retention counts from then); NX: a re-run keeps its place.
        pipe.zadd(INDEX, {document["id"]: now}, nx=True)
        pipe.zremrangebyscore(INDEX, "-inf", now - self.retention)
        pipe.execute()

    def get(self, sid: str) -> dict | None:
        raw = self.redis.get(self.key(sid))
        return json.loads(raw) if raw else None

    def recent(self, limit: int = 50) -> list[dict]:
        """Newest first; entries whose document expired are skipped."""
        ids = [i.decode() for i in self.redis.zrevrange(INDEX, 0, max(limit, 1) - 1)]
        if not ids:
            return []
        docs = self.redis.mget([self.key(i) for i in ids])
        return [json.loads(d) for d in docs if d]
