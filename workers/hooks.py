"""The endpoint's hooks, answered by enqueuing recovery work (never by doing it in the request)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from redis.exceptions import RedisError

from flows.engine import Hooks
from flows.identity import of_session
from flows.sessions import short
from workers.queues import HIGH, enqueue_once
from workers.recovery import job_id, schedule_ladder
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.hooks")


class RecoveryHooks(Hooks):
    def __init__(self, redis, sessions, ladders, settings: dict):
        self.redis = redis
        self.sessions = sessions
        self.ladders = ladders  # flow name → Ladder
        self.settings = settings

    def _enqueue(self, func: str, token: str, *args, kind: str):
        try:  # already queued or done for this session: once is enough
            enqueue_once(self.redis, func, token, *args, queue_name=HIGH, job_id=job_id(kind, token))
        except RedisError as exc:
            redis_unavailable(log, f"enqueueing {func}", exc, token=short(token))

    def opened(self, flow: str, token: str) -> None:
        if self.settings["start"] != "opened":
            return
        try:
            self.start(flow, token)
        except RedisError as exc:
            redis_unavailable(log, "recovery ladder", exc, "not scheduled", token=short(token))

    def start(self, flow: str, token: str) -> None:
        """Schedule the ladder for a session we can reach (we know its phone or BSUID) that starts a
        chain."""
        session = self.sessions.get(token) or {}
        if of_session(session) is None or (session.get("origin") or token) != token:
            return
        schedule_ladder(self.redis, token, flow, self.ladders(flow), self.settings["quiet"](flow),
                        self.settings["timezone"], datetime.now(timezone.utc))

    def completed(self, flow: str, token: str) -> None:
        self._enqueue("workers.recovery.on_completed", token, kind="done")

    def client_error(self, flow: str, token: str, error_key: str) -> None:
        self._enqueue("workers.recovery.fallback", token, "client_error", kind="fb")

    def lookups_failing(self, flow: str, token: str) -> None:
        self._enqueue("workers.recovery.fallback", token, "lookup_unavailable", kind="fb")

    def refused(self, flow: str, token: str, state: str) -> None:
        if state == "expired":
            self._enqueue("workers.recovery.fallback", token, "expired", kind="fb")
