"""Several worker processes in one dyno (``flask worker --processes N``, ``WORKER_PROCESSES``).

A worker process runs ``WORKER_THREADS`` jobs at once (workers/jobthreads.py), so waiting on Meta
no longer calls for more processes; its one core (the GIL) is what caps it. On a dyno with more
cores, one process per core: this parent forks N workers, keeps N running (a worker that dies is
replaced a second later) and stops them on SIGTERM/SIGINT.

- Only worker 0 runs RQ's scheduler: one scheduler process per dyno rather than one per worker
  (~45 MB each); its lock makes one scheduler per deployment anyway.
- Heroku's SIGTERM reaches every process of the dyno, so each worker already has it; the parent
  passes it on too, for a parent signalled alone. RQ ignores the same stop asked twice within a
  second (its own guard for worker pools), so that is one warm shutdown, not a cold one.
- RQ's ``worker-pool`` is not used: it starts every worker with the scheduler and builds the
  worker itself, without this app's settings (``workers.queues.build_worker``).
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import time
from typing import Callable

log = logging.getLogger("flowgate.worker")

RESPAWN_PAUSE = 1.0  # a worker that dies at start must not make the parent spin


def run_pool(processes: int, run_one: Callable[[int], None], burst: bool = False) -> int:
    """Fork ``processes`` children, each calling ``run_one(index)``; returns when all have ended
    (burst: when each has emptied the queues; otherwise after a stop signal)."""
    children: dict[int, int] = {}  # pid -> index
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: RQ installs its own handlers in work()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                run_one(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:
                log.exception("worker %d crashed", index)
                code = 1
            os._exit(code)  # never back into the parent's stack
        children[pid] = index

    def stop(signum, frame):
        nonlocal stopping
        if not stopping:
            log.info("pool: %s, stopping %d workers after their jobs", signal.Signals(signum).name,
                     len(children))
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # What the parent imported (the app, RQ, the job modules) is shared with every child until
    # written to; the collector's bookkeeping writes to every object it scans. Frozen, those
    # pages stay shared: 32 single-job workers fitted in 444–467 MiB (docs/benchmarks.md).
    gc.freeze()
    for index in range(processes):
        spawn(index)
    log.info("pool: %d workers started (worker 0 runs the scheduler)", processes)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None or stopping or burst:
            continue
        log.warning("pool: worker %d (pid %d) ended (%s); starting another", index, pid,
                    _status(status))
        time.sleep(RESPAWN_PAUSE)
        if not stopping:
            spawn(index)
    return 0


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.WEXITSTATUS(status)}"
