"""Helpers for driving real processes, shared by the tests and the benchmarks (bench/common.py)."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll until ``condition()`` is truthy and return its value; fail with ``message`` after
    ``timeout`` (an AssertionError: in a test, the failure says what never happened)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def project_env(**overrides) -> dict:
    """A child's environment (gunicorn, flask worker): ours minus any Flowgate setting, plus
    exactly what the caller sets (None: leave unset)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOW_", "WHATSAPP_", "REDIS_", "WEB_CONCURRENCY", "GUNICORN_", "WORKER_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return env
