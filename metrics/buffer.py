"""A web process's metrics, added up in memory and written to Redis once a second.

Every Flow endpoint request records its latency, action and status: a dozen counter increments.
Sent per request, that was one pipelined round trip and about a third of a ping's CPU
(docs/benchmarks.md, ``bench.breakdown``). Summed here, a second of traffic costs one round trip
per process whatever the rate.

What it costs: the dashboard lags by up to ``seconds``, and a web process that is SIGKILLed loses
at most that much of its counts (a graceful stop flushes: gunicorn's ``worker_exit`` hook). Only
metrics wait here; sessions, replies and jobs never do. A flush that fails (Redis restarting)
keeps its counts for the next one: the pending set is bounded by the label vocabulary, not by
traffic.

Only gunicorn's workers turn this on (``gunicorn.conf.py``, ``post_fork``), since only they have a
graceful-exit hook that flushes; RQ workers (whose horses, with RQ_FORK_PER_JOB, end with
``os._exit``) and CLI commands write through.
"""
from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError

from metrics.store import Pending
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.metrics")


class Buffer:
    def __init__(self, redis, seconds: float):
        self.redis = redis
        self.seconds = seconds
        self._lock = threading.Lock()
        self._pending = Pending()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # one warning per outage, not one a second

    def add(self, pending: Pending) -> None:
        with self._lock:
            self._pending.merge(pending)

    def start(self) -> "Buffer":
        """The flusher thread; call it in the process that serves (after the fork)."""
        self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and write what is pending (a graceful worker exit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds + 1)
        self.flush()

    def flush(self) -> bool:
        with self._lock:
            pending, self._pending = self._pending, Pending()
        if not pending:
            return True
        try:
            pipe = self.redis.pipeline(transaction=False)
            pending.write(pipe)
            pipe.execute()
        except RedisError as exc:
            if not self._failing:
                redis_unavailable(log, "metrics", exc, "kept in memory until Redis answers")
            self._failing = True
            with self._lock:  # back in front of what arrived meanwhile, so events keep their order
                pending.merge(self._pending)
                self._pending = pending
            return False
        if self._failing:
            log.info("metrics written again after a Redis outage")
            self._failing = False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            started = time.monotonic()
            self.flush()
            if time.monotonic() - started > self.seconds:
                log.warning("metrics flush took longer than its %.1f s period", self.seconds)
