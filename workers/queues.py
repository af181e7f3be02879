"""Every RQ customisation in one place: queues, serializer, TTLs, retries, the worker class.

Facts behind the choices are in shared/docs/rq-redis-heroku.md:
- plain ``rq worker`` loses the running job on Heroku (SIGTERM reaches the horse), so the worker
  is HerokuWorker-based and lets a short job finish before the 30 s SIGKILL;
- RQ's fork per job capped 2 cores at ~130 jobs/s, so jobs run in the worker process, with the
  heartbeats and the shutdown deadline the horse's parent would give them (``FlowgateWorker``);
- a custom ``job_id`` alone does not deduplicate; ``unique=True`` does;
- a ``Retry`` interval list is right-aligned: give it exactly ``max`` values;
- ``failure_ttl`` defaults to a year: days are enough, and a failed unique job blocks its id.
"""
from __future__ import annotations

import importlib
import logging
import math
import signal
import threading
import time
from contextlib import nullcontext
from datetime import timedelta

from flask import current_app, has_app_context
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, StopRequested
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq.worker import HerokuWorker
from flows.redact import redis_unavailable
from workers.jobthreads import SHUTDOWN_GRACE, Monitor, Run, WatchedTimeout, fail_from_outside

HIGH, DEFAULT, LOW = "flowgate-high", "flowgate-default", "flowgate-low"
QUEUES = (HIGH, DEFAULT, LOW)  # priority order: a worker drains HIGH first

JOB_TIMEOUT = 60  # seconds; every outbound call inside a job has its own shorter timeout
RESULT_TTL = int(timedelta(days=1).total_seconds())
FAILURE_TTL = int(timedelta(days=7).total_seconds())


# Imported when the worker starts, so the first job does not pay for the import (and with
# RQ_FORK_PER_JOB every horse inherits them).
JOB_MODULES = ("workers.completion", "workers.inbound")

BACKOFF = (10, 30, 120, 600, 1800)  # seconds before retry 1, 2, 3, ... (JOB_RETRY_BACKOFF)


def retry_policy(max_retries: int | None = None, backoff=None) -> Retry:
    """Growing waits. The list handed to RQ has exactly ``max_retries`` values, so its
    right-aligned reading gives retry n the n-th wait, as written."""
    if has_app_context():  # the deployment's policy (tests shorten the waits through config)
        backoff = current_app.config["JOB_RETRY_BACKOFF"] if backoff is None else backoff
        max_retries = current_app.config["JOB_MAX_RETRIES"] if max_retries is None else max_retries
    backoff = list(BACKOFF if backoff is None else backoff)
    max_retries = len(backoff) if max_retries is None else max_retries
    intervals = (backoff + [backoff[-1]] * max_retries)[:max_retries]
    return Retry(max=max_retries, interval=intervals)


def retry_from(cfg) -> Retry:
    """The policy configured for this deployment (tests shorten the waits through config)."""
    return retry_policy(cfg["JOB_MAX_RETRIES"], cfg["JOB_RETRY_BACKOFF"])


def honour_retry_after(job, exc_type, exc_value, traceback) -> bool:
    """Worker exception handler: an exception carrying ``retry_after`` (a Graph API 429 with
    Retry-After, an effect still leased by another attempt) pushes the next retry back at least
    that long.

    RQ calls handlers before it schedules the retry, and reads the wait from
    ``retry_intervals[len - retries_left]`` (right-aligned); only that slot is raised, so later
    retries keep their own waits.
    """
    wait = getattr(exc_value, "retry_after", None)
    intervals = job.retry_intervals
    if wait and job.retries_left and intervals:
        index = max(len(intervals) - job.retries_left, 0)
        intervals[index] = max(intervals[index], math.ceil(wait))
    return True  # let the next handler (RQ's default: failed registry / retry) run


def queue(connection, name: str = DEFAULT) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT)


def enqueue(connection, func: str, *args, queue_name: str = DEFAULT, job_id: str | None = None,
            retry: Retry | None = None, at=None, delay: timedelta | None = None, **kwargs):
    """Enqueue by dotted path, so the web side never imports job code.

    With a ``job_id`` the job is unique: a second enqueue of the same id raises
    ``rq.exceptions.DuplicateJobError`` instead of running the job twice.
    """
    q = queue(connection, queue_name)
    options = dict(
        args=args, kwargs=kwargs, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL, retry=retry or retry_policy(),
        # RQ logs every job's description when it starts and ends, and by default that is the
        # call with its arguments: whole phone numbers, flow tokens, webhook payloads with form
        # values (tests/test_log_hygiene.py). The function's path and the job id say enough.
        description=func,
    )
    if job_id:
        options.update(job_id=job_id, unique=True)
    if at is not None:
        return q.enqueue_at(at, func, **options)
    if delay is not None:
        return q.enqueue_in(delay, func, **options)
    return q.enqueue(func, **options)


def enqueue_once(connection, func: str, *args, job_id: str, **kwargs):
    """``enqueue`` under a unique id; None when that job is queued or done already (a webhook
    delivered twice, a retried job enqueuing its follow-ups again): once is the point."""
    try:
        return enqueue(connection, func, *args, job_id=job_id, **kwargs)
    except DuplicateJobError:
        return None


def schedule_hourly(connection, func: str, name: str, now: float | None = None):
    """Run ``func`` at the top of the next hour, once however many workers ask: the job id names
    the hour, and the job schedules its successor the same way (a cron without a cron process:
    RQ's scheduler, which worker 0 of each dyno runs, enqueues it when it is due)."""
    from datetime import datetime, timezone

    due = (int((time.time() if now is None else now) // 3600) + 1) * 3600
    return enqueue_once(connection, func, job_id=f"{name}-{due}", queue_name=LOW,
                        at=datetime.fromtimestamp(due, timezone.utc))


def is_final_attempt() -> bool:
    """Inside a job: True when a failure now would not be retried (fall back instead of raising)."""
    from rq import get_current_job

    job = get_current_job()
    return job is not None and not job.retries_left


class _ReliableDequeue(Queue):
    """RQ's dequeue pops a job's id (BLPOP), then reads the job: Redis going away between the two
    (a restart) lost the job — off its queue, in no registry, ``queued`` for good — while RQ's loop
    just retried the pop. Seen in tests/test_chaos.py once the worker's main thread spent its time
    dequeuing (jobs in threads). RQ names the popped id on the error: once Redis is back, it goes
    back to the front of its queue, exactly once (removed first, in case the pop was never
    persisted)."""

    @classmethod
    def dequeue_any(cls, *args, **kwargs):
        try:
            return super().dequeue_any(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            job_id, popped_from = getattr(exc, "job_id", None), getattr(exc, "queue", None)
            if job_id and popped_from is not None:
                _push_back(popped_from, job_id)
            raise


def _push_back(popped_from: Queue, job_id: str, pause: float = 0.5, tries: int = 120) -> None:
    for _ in range(tries):  # about a minute: longer than a Redis restart or failover takes
        try:
            with popped_from.connection.pipeline() as pipe:
                pipe.lrem(popped_from.key, 0, job_id)
                pipe.lpush(popped_from.key, job_id)
                pipe.execute()
            return
        except (RedisConnectionError, RedisTimeoutError):
            time.sleep(pause)


class FlowgateWorker(HerokuWorker):
    """HerokuWorker that runs its jobs in the worker's own process, several at once, not in a
    fork per job.

    A fork per job (RQ's model) capped this machine at ~130 no-op jobs/s, below Meta's 80
    confirmations/s once each completion's follow-up job is counted (docs/benchmarks.md); one job
    at a time capped a process at 1/L jobs a second when Meta answers in L seconds. Here
    ``execute_job`` does what RQ's SimpleWorker does (prepare the execution, ``perform_job`` in
    this process), in a thread of its own and a fresh app context, ``threads``
    (``WORKER_THREADS``) jobs at a time, and adds what SimpleWorker lacks
    (``workers/jobthreads.py``):

    - heartbeats while a job runs, so a long job is never declared abandoned and a SIGKILLed
      worker's jobs are, ``heartbeat_grace`` after their last beat;
    - Heroku's SIGTERM is a true warm shutdown: the jobs go on and the worker stops after them. A
      job still running ``imminent_shutdown_delay`` later gets ShutDownImminentException (failed
      and retried, as HerokuWorker does to its horse), well before the SIGKILL at 30 s;
    - a job past its timeout gets JobTimeoutException; one wedged past its timeout +
      ``heartbeat_grace`` takes the process down, as RQ kills a wedged horse; its jobs are then
      recovered as abandoned.

    ``fork_per_job`` (``RQ_FORK_PER_JOB``) restores RQ's horse per job, one at a time.
    """

    # Heroku sends SIGKILL 30 s after SIGTERM: 20 s lets a job that is nearly done finish and
    # leaves time to fail it (RQ retries it) and register this worker's death.
    imminent_shutdown_delay = 20
    # RQ adds a fixed 60 s to every job heartbeat's TTL, so a job whose worker was SIGKILLed is
    # found abandoned no sooner than a minute later. Kept as the default; RQ_HEARTBEAT_GRACE
    # shortens it where recovery must be fast (the fault-injection tests). It must stay well
    # above RQ_JOB_MONITORING_INTERVAL plus a Redis round trip, or live jobs look abandoned.
    heartbeat_grace = 60
    fork_per_job = False
    threads = 1  # jobs running at once in this process (WORKER_THREADS)
    queue_class = _ReliableDequeue
    _full_beat_at = 0.0  # monotonic time of the last heartbeat with the full worker TTL

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        return super().get_heartbeat_ttl(job, working_time) - 60 + self.heartbeat_grace

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ pushes the worker key's TTL (``worker_ttl`` + 60 s) forward four times per job,
        three round trips each: a third of a short job's Redis traffic. One such beat a second,
        in one round trip, keeps the same promise. A beat with its own TTL (a job starting, a
        running job's beat) always goes out, and so does the next full one after it."""
        if timeout is not None:
            self._full_beat_at = 0.0
            return super().heartbeat(timeout, pipeline)
        now = time.monotonic()
        if now - self._full_beat_at < 1.0:
            return None
        self._full_beat_at = now
        if pipeline is not None:
            return super().heartbeat(None, pipeline)
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(None, pipe)
                pipe.execute()
        except (RedisConnectionError, RedisTimeoutError):
            self._full_beat_at = 0.0  # the worker key outlives a missed beat by minutes: next loop
        return None

    def check_for_suspension(self, burst):
        """With jobs in threads, the main thread goes on looping while Redis is away (it used to
        sit inside the job): RQ's loop quits on a Redis error outside its dequeue, so its own
        Redis steps wait for Redis here instead (suspension check, maintenance, the dequeue's
        bookkeeping)."""
        while True:
            try:
                return super().check_for_suspension(burst)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                self._redis_gone("the suspension check", exc)
                if self._stop_requested:
                    return None

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._redis_gone("maintenance", exc)  # it runs again at the next interval

    def _redis_gone(self, where: str, exc) -> None:
        redis_unavailable(self.log, f"Worker {self.name}: {where}", exc, "waiting for it")
        self._wait_for_redis()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runs: dict[str, Run] = {}  # execution id -> the job running in its thread
        self.shutdown_deadline: float | None = None  # monotonic; set by Heroku's SIGTERM
        self._slot_freed = threading.Condition()
        self._monitor: Monitor | None = None
        self._app = None

    def execute_job(self, job, queue):
        """Hand the job to a thread of its own (``workers/jobthreads.py``) and return: the main
        thread dequeues the next one once a slot is free (``dequeue_job_and_maintain_ttl``).

        RQ rides out a Redis outage only while it waits for a job. Two holes when one starts
        during a job (a restart, a failover), both seen in tests/test_chaos.py:

        - the worker quit once the job ended, and its scheduler's lock kept every other
          worker's scheduler out for 61 s: no retry and no recovery step ran for a minute;
        - a job taken off its queue (BLPOP: three queues, so no intermediate list) whose start
          could not be recorded was in no queue and no registry, status ``queued``: lost.

        So wait for Redis here (and in the job's thread), as the dequeue does, then put back a
        job whose function never ran; one that did run stays ``started`` and is recovered as
        abandoned. Maintenance then restarts this worker's own scheduler under its own lock.
        """
        try:
            if self.fork_per_job:
                super().execute_job(job, queue)
            else:
                self._start_thread(job, queue)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if self.horse_pid:  # the horse still runs: do not walk away from it
                raise
            self._ride_out(job, queue, exc)

    def _ride_out(self, job, queue, exc) -> None:
        redis_unavailable(self.log, f"Worker {self.name}: job {job.id}", exc, "waiting for it")
        self._wait_for_redis()
        self._put_back_if_never_started(job, queue)

    def _start_thread(self, job, queue) -> None:
        if self._monitor is None:
            self.death_penalty_class = WatchedTimeout  # SIGALRM reaches the main thread only
            self._app = current_app._get_current_object() if has_app_context() else None
            self._monitor = Monitor(self)
            self._monitor.start()
        run = Run(job, queue, self.prepare_execution(job))
        run.next_beat = run.started + max(self.job_monitoring_interval, 1)  # the start was a beat
        run.thread = threading.Thread(target=self._run, args=(run,), name=f"job-{job.id}", daemon=True)
        self.runs[run.execution.id] = run
        run.thread.start()

    def _run(self, run: Run) -> None:
        try:
            # Each job gets its own app context (``g``), as each forked horse got a copy.
            with self._app.app_context() if self._app is not None else nullcontext():
                self.perform_job(run.job, run.queue, run.execution)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not run.abandoned:
                self._ride_out(run.job, run.queue, exc)
        except BaseException:  # noqa: BLE001 - RQ recorded the job's own failure; this is its bookkeeping
            if not run.abandoned:
                self.log.exception("Worker %s: job %s ended outside RQ's handling", self.name, run.job.id)
        finally:
            if not run.abandoned:
                self.runs.pop(run.execution.id, None)
                with self._slot_freed:
                    self._slot_freed.notify_all()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """Take a job only when a thread is free for it: a job off its queue and not yet started
        is in no queue and no registry (lost if the process dies then). In burst mode, an empty
        queue with jobs still running is looked at again once one ends: they may enqueue more."""
        while True:
            self._wait_for_a_slot(self.threads)
            if self._stop_requested:  # asked while jobs ran (RQ's BUSY): no new one, not even a wait
                raise StopRequested()
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except (RedisConnectionError, RedisTimeoutError) as exc:  # its state write, not its pop
                self._redis_gone("the dequeue", exc)
                continue
            if result is not None or timeout is not None or not self.runs:
                return result
            self._wait_for_a_slot(len(self.runs))

    def _wait_for_a_slot(self, busy: int) -> None:
        """Until fewer than ``busy`` jobs run (a stop request ends the wait: RQ then stops)."""
        with self._slot_freed:
            while len(self.runs) >= max(busy, 1) and not self._stop_requested:
                self._slot_freed.wait(1.0)
                try:
                    self.heartbeat()
                except (RedisConnectionError, RedisTimeoutError):
                    pass  # the jobs' own calls meet it too; the dequeue below rides it out

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        # The job's function has returned or raised: from here on it is RQ's bookkeeping, which
        # a late shutdown deadline or timeout must not interrupt.
        run = next((r for r in list(self.runs.values()) if r.job is job), None)
        if run is not None and not run.settle():
            threading.Event().wait()  # failed from outside at the deadline: the process is exiting
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def handle_warm_shutdown_request(self):
        if self.fork_per_job:
            return super().handle_warm_shutdown_request()
        # Set even when idle: a job being handed to its thread right now gets the same deadline.
        self.shutdown_deadline = time.monotonic() + self.imminent_shutdown_delay
        if not self.runs:
            self.log.info("Worker %s: warm shut down requested while idle", self.name)
            return
        self.log.warning("Worker %s: warm shut down requested; %d running job(s) may run %d s more",
                         self.name, len(self.runs), self.imminent_shutdown_delay)

    def teardown(self):
        """Before RQ's (scheduler stopped, death registered): the running jobs end, by themselves
        or at the shutdown deadline; one still running ``SHUTDOWN_GRACE`` after it is failed from
        here and left to the process's exit."""
        while self.runs:
            deadline = self.shutdown_deadline
            if deadline is not None and time.monotonic() > deadline + SHUTDOWN_GRACE:
                for run in list(self.runs.values()):
                    if run.abandon():
                        self.runs.pop(run.execution.id, None)
                        fail_from_outside(self, run)
            with self._slot_freed:
                if self.runs:
                    self._slot_freed.wait(0.5)
        if self._monitor is not None:
            self._monitor.stopped.set()
        super().teardown()

    def kill_horse(self, sig=signal.SIGKILL):
        # RQ's killpg(getpgid(0)) would take this worker down with its group: with no horse
        # (stop-job command, cold shutdown) the job runs on to its end, its timeout or SIGKILL.
        if self.horse_pid:
            super().kill_horse(sig)

    def _put_back_if_never_started(self, job, queue) -> None:
        try:
            # The job is marked started before its function is called; still "queued" means
            # the function never ran. Its execution may be in the started registry already, and
            # RQ's cleanup drops such entries without requeueing (it only recovers "started").
            if job.get_status(refresh=True) != JobStatus.QUEUED:
                return
            with self.connection.pipeline() as pipe:
                queue.started_job_registry.remove_executions(job, pipeline=pipe)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
            self.log.warning("Worker %s: job %s never ran; put back on %s", self.name, job.id, queue.name)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            redis_unavailable(self.log, f"Worker {self.name}: job {job.id}", exc, "not put back",
                              level=logging.ERROR)

    def _wait_for_redis(self, pause: float = 0.5, longest: float = 30.0) -> None:
        while not self._stop_requested:
            try:
                self.connection.ping()
                return
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(pause)
                pause = min(pause * 2, longest)


def import_job_modules() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)


def build_worker(connection, queue_names=QUEUES, name: str | None = None, *,
                 maintenance_interval: int = 600, job_monitoring_interval: int = 30,
                 worker_ttl: int = 420, heartbeat_grace: int = 60,
                 fork_per_job: bool = False, threads: int = 1) -> FlowgateWorker:
    """Recovery after a worker is SIGKILLed depends on three RQ timings (rq-redis-heroku.md):

    - a job is declared abandoned ``job_monitoring_interval`` + 60 s after its last heartbeat;
    - a worker looks for abandoned jobs, and takes over a dead worker's scheduler lock (which
      expires 61 s after the dead worker last refreshed it), at most every ``maintenance_interval``;
    - an idle worker only gets to that check when its blocking dequeue returns, every
      ``worker_ttl`` - 15 s.

    ``heartbeat_grace`` replaces RQ's fixed 60 s in the first one (``FlowgateWorker``). The dead
    worker's scheduler lock still expires 61 s after its last refresh (RQ's own constant).
    """
    import_job_modules()
    worker = FlowgateWorker(
        [_ReliableDequeue(n, connection=connection, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT)
         for n in queue_names],
        connection=connection,
        serializer=JSONSerializer,
        name=name,
        exception_handlers=[honour_retry_after],
        maintenance_interval=maintenance_interval,
        job_monitoring_interval=job_monitoring_interval,
        worker_ttl=worker_ttl,
    )
    worker.heartbeat_grace = heartbeat_grace
    worker.fork_per_job = fork_per_job
    worker.threads = max(1, threads)
    return worker
