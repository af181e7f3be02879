"""Drift: a request that the Flow JSON served here could not have produced.

WhatsApp runs the Flow JSON published on Meta, and sends its ``data_api_version`` as the
request's ``version``, its screen ids as ``screen`` and its ``data_exchange`` payload keys as
``data``. A request whose version is not the served Flow's, or that names a screen or a data key
the served Flow JSON does not have, means Meta runs another JSON than the repository's: an old
publish, a hand edit in Flow Builder, a deploy not done. The engine still answers it as well as
it can; this module says which kinds of drift a request shows (``detect``) and logs each flow's
drift once an hour across all processes (``DriftLog``), pointing at the fix: `flask flows deploy`.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache

from redis.exceptions import RedisError

from flows.protocol import ERROR_KEYS, FlowRequest
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.drift")

VERSION, SCREEN, DATA_KEY = "version", "screen", "data_key"
LOG_EVERY_SECONDS = 3600
_MAX_NAMES = 5  # of the unknown data keys a log line names (the client chose them)


def detect(flow, req: FlowRequest) -> tuple[str, ...]:
    """The kinds of drift ``req`` shows against ``flow``'s Flow JSON (pings and error
    notifications carry nothing to compare)."""
    if req.action == "ping" or req.is_error_notification:
        return ()
    found = []
    served = flow.definition.get("data_api_version")
    if served is not None and req.version != str(served):
        found.append(VERSION)
    if req.screen is not None and not flow.has_screen(req.screen):
        found.append(SCREEN)
    elif req.action == "data_exchange" and unknown_keys(flow, req):
        found.append(DATA_KEY)
    return tuple(found)


def unknown_keys(flow, req: FlowRequest) -> list[str]:
    """Keys of the request's data that no data_exchange payload on its screen sends."""
    if req.screen is None:
        return []
    known = payload_keys(flow).get(req.screen, frozenset())
    return sorted(k for k in req.data if k not in known and k not in ERROR_KEYS)


@lru_cache(maxsize=256)
def payload_keys(flow) -> dict:
    """Screen id -> the keys its data_exchange payloads send (read once per flow)."""
    return {s.get("id"): frozenset(_payload_keys(s)) for s in flow.definition.get("screens", [])
            if isinstance(s, dict)}


def _payload_keys(value) -> set:
    """Keys of every data_exchange action's payload under ``value``."""
    keys: set = set()
    if isinstance(value, dict):
        if value.get("name") == "data_exchange" and isinstance(value.get("payload"), dict):
            keys |= set(value["payload"])
        for item in value.values():
            keys |= _payload_keys(item)
    elif isinstance(value, list):
        for item in value:
            keys |= _payload_keys(item)
    return keys


class DriftLog:
    """One warning per flow and hour, whatever the number of processes: a Redis SET NX EX key
    (``fg:drift:logged:<flow>``), and a memo so a process asks Redis at most once an hour."""

    def __init__(self, redis, every: int = LOG_EVERY_SECONDS):
        self.redis = redis
        self.every = every
        self._until: dict[str, float] = {}

    def note(self, flow, req: FlowRequest, kinds: tuple[str, ...]) -> bool:
        """Log this drift if nobody has logged this flow's within the hour; True when logged.
        Raises RedisError (the engine serves without it)."""
        now = time.monotonic()
        if self._until.get(flow.name, 0) > now:
            return False
        self._until[flow.name] = now + self.every
        if not self.redis.set(f"fg:drift:logged:{flow.name}", "1", nx=True, ex=self.every):
            return False
        served = flow.definition.get("data_api_version")
        unknown = unknown_keys(flow, req) if DATA_KEY in kinds else []
        log.warning("flow=%s drift (%s): the Flow JSON Meta runs is not the one served here "
                    "(request version %s, served data_api_version %s; screen %s%s). "
                    "Fix: flask flows deploy %s (logged once an hour; counted on the dashboard)",
                    flow.name, ", ".join(kinds), req.version[:10], served, (req.screen or "-")[:60],
                    (f"; unknown data keys {', '.join(k[:40] for k in unknown[:_MAX_NAMES])}"
                     if unknown else ""), flow.name)
        return True


def note_quietly(drift_log: DriftLog | None, flow, req: FlowRequest, kinds) -> None:
    if drift_log is None or not kinds:
        return
    try:
        drift_log.note(flow, req, kinds)
    except RedisError as exc:
        redis_unavailable(log, "drift log", exc, "not noted", level=logging.DEBUG)
