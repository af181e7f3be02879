"""Jobs the tests hand to real `flask worker` processes, by dotted path (``worker_jobs.stuck``).

They live here, not in the test modules, because a worker imports a job's module inside the job's
own timeout: a test module would drag in conftest, the app and hypothesis, which on a loaded
machine takes longer than a 1 s ``job_timeout`` and turns the test into a race. This module
imports nothing but the standard library. The worker finds it through PYTHONPATH (``JOBS_PATH``
in tests/test_workers.py).
"""
from __future__ import annotations

import signal
import time


def pause(seconds: float) -> None:
    time.sleep(seconds)


def stuck(seconds: float) -> None:
    """A job SIGALRM cannot stop (it blocks the signal), as one stuck in C code would be."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)
