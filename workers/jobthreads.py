"""Several jobs at once in one worker process: each in a thread of its own, one monitor for all.

A confirmation spends ~1 % of its time on the CPU and the rest waiting for Meta (200–500 ms): a
process that ran one job at a time sent 1/L messages a second, and Meta's 80/s took 24+
processes per dyno (docs/benchmarks.md). Here the worker's main thread keeps RQ's loop (dequeue,
maintenance, signals) and hands each job to a thread; ``WORKER_THREADS`` of them run at once,
sharing the process's memory, Redis pool and HTTP pools.

What RQ's horse parent (and this worker's former single in-process job) did, the monitor does for
every running job, once a second:

- heartbeats every ``job_monitoring_interval``, so no running job is taken for abandoned and a
  SIGKILLed worker's jobs are, ``heartbeat_grace`` after their last beat;
- the job timeout: the job gets ``JobTimeoutException`` (RQ's SIGALRM reaches the main thread
  only); a job still running ``heartbeat_grace`` past its timeout takes the process down (the
  scheduler with it) and its jobs are recovered as abandoned, as RQ kills a wedged horse;
- Heroku's SIGTERM: no new job; each running one may finish within ``imminent_shutdown_delay``,
  then gets ``ShutDownImminentException`` (failed and retried, as HerokuWorker does to its horse).

An exception is raised in a job thread with ``PyThreadState_SetAsyncExc`` (what RQ's own
``TimerDeathPenalty`` uses): it lands when the thread next runs Python code, so a thread blocked in
C (a socket read, ``time.sleep``) gets it when that call returns — every outbound call has its
own timeout (10 s for Graph). A job still running 2 s after its shutdown deadline is therefore
failed from here (RQ's failure handling: the retry is scheduled) and its thread is left to the
process's exit; whatever it had started is the SIGKILL case, which ``workers/effects.py`` closes.
A job whose function has returned is never interrupted: from ``handle_execution_ended`` on it is
RQ's bookkeeping (``Run.settle``).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from rq.exceptions import ShutDownImminentException
from rq.timeouts import BaseDeathPenalty, JobTimeoutException
from redis.exceptions import RedisError
from rq.utils import now

from flows.redact import redis_unavailable

SHUTDOWN_GRACE = 2.0  # seconds after the deadline before a job that did not stop is failed from here


class ShutDownImminent(ShutDownImminentException):
    """What a job thread gets at the shutdown deadline (raised asynchronously: no arguments)."""

    def __init__(self, *args):
        super().__init__("ShutDownImminentException: shut down imminent", {})


class JobTimeout(JobTimeoutException):
    """What a job thread gets past its timeout (raised asynchronously: no arguments)."""

    def __init__(self, *args):
        super().__init__("Task exceeded its maximum timeout value")


class WatchedTimeout(BaseDeathPenalty):
    """RQ's death penalty for a job in a thread: nothing to arm; the monitor enforces the timeout."""

    def setup_death_penalty(self):
        pass

    def cancel_death_penalty(self):
        pass


@dataclass
class Run:
    """One job running in its own thread."""

    job: object
    queue: object
    execution: object
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.monotonic)
    next_beat: float = 0.0
    interruptible: bool = True  # False once the job's function has returned or raised
    abandoned: bool = False  # failed from outside at the shutdown deadline: record nothing more
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def interrupt(self, exc_class) -> bool:
        """Raise ``exc_class`` in the job's thread, unless its function is done already."""
        with self.lock:
            if not self.interruptible or self.interrupted or self.thread is None:
                return False
            self.interrupted = True
            return _async_raise(self.thread.ident, exc_class)

    def settle(self) -> bool:
        """Called by the job's thread once its function ended: no interrupt after this. False
        when the job was failed from outside meanwhile (the thread must then record nothing)."""
        while True:
            try:
                with self.lock:
                    self.interruptible = False
                    if self.interrupted and self.thread is not None:
                        _async_raise(self.thread.ident, None)  # clear one still pending
                    return not self.abandoned
            except (ShutDownImminentException, JobTimeoutException):
                continue  # it landed just now: the function is done all the same

    def abandon(self) -> bool:
        """At the shutdown deadline + grace: True when the job thread will record nothing more."""
        with self.lock:
            if not self.interruptible:
                return False  # it is recording its end: let it finish
            self.abandoned = True
            return True


def _async_raise(ident: int | None, exc_class) -> bool:
    if ident is None:
        return False
    target = ctypes.py_object(exc_class) if exc_class is not None else None
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), target) == 1


class Monitor(threading.Thread):
    """One thread per worker process watching every running job (see the module's docstring)."""

    def __init__(self, worker):
        super().__init__(name="job-monitor", daemon=True)
        self.worker = worker
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):  # a shutdown deadline is seen within a second
            for run in list(self.worker.runs.values()):
                try:
                    self.look_at(run, time.monotonic())
                except RedisError as exc:  # the next beat tries again; the job goes on
                    redis_unavailable(self.worker.log, f"Worker {self.worker.name}: heartbeat for job "
                                      f"{run.job.id}", exc, "the next beat tries again")

    def look_at(self, run: Run, at: float) -> None:
        worker, job = self.worker, run.job
        running = at - run.started
        deadline = worker.shutdown_deadline
        if deadline is not None and at >= deadline and run.interrupt(ShutDownImminent):
            worker.log.warning("Worker %s: raising ShutDownImminentException to cancel job %s",
                               worker.name, job.id)
        timeout = job.timeout if (job.timeout or -1) > 0 else None
        if timeout is not None and running > timeout and run.interrupt(JobTimeout):
            worker.log.warning("Worker %s: job %s exceeded its %s s timeout", worker.name, job.id, timeout)
        if timeout is not None and running > timeout + worker.heartbeat_grace and run.interruptible:
            self.wedged(run, running)
        if at >= run.next_beat:
            run.next_beat = at + max(worker.job_monitoring_interval, 1)
            with run.lock:  # not once the job ends: a late beat would put its execution back
                if run.interruptible:
                    worker.maintain_heartbeats(job, run.execution)

    def wedged(self, run: Run, running: float) -> None:
        worker = self.worker
        worker.log.error("Worker %s: job %s still running %.0f s after it started, past its "
                         "timeout; killing this worker so the job is recovered elsewhere",
                         worker.name, run.job.id, running)
        scheduler = getattr(self.worker.scheduler, "_process", None)
        if scheduler is not None and scheduler.pid:
            os.kill(scheduler.pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def fail_from_outside(worker, run: Run) -> None:
    """A job that did not stop at its shutdown deadline: recorded as RQ records a job that raised
    ShutDownImminentException (the exception handlers run, the retry is scheduled)."""
    job = run.job
    exc = ShutDownImminent()
    job.ended_at = now()
    worker.handle_exception(job, type(exc), exc, None)
    worker.handle_job_failure(job, run.queue, run.queue.started_job_registry,
                              exc_string=f"{exc} (the job did not stop at the shutdown deadline)",
                              execution=run.execution)
