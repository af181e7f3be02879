"""The RQ internals FlowgateWorker (workers/queues.py) still leans on, pinned against the
installed rq: public hooks were used wherever RQ 3.0 has them (``horse_pid``, raising
ShutDownImminentException ourselves); what is left has no public equivalent. An RQ upgrade that
renames or reshapes one fails here, in CI, not in a production worker."""
from __future__ import annotations

import inspect

import rq
from rq.scheduler import RQScheduler
from rq.worker import BaseWorker, HerokuWorker

from workers import jobthreads, queues

SOURCE = inspect.getsource(queues) + inspect.getsource(jobthreads)


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_the_worker_still_stops_on_the_flag_rq_sets():
    # _wait_for_redis ends on a stop request; RQ sets this flag on SIGTERM (no public reader).
    assert "self._stop_requested" in SOURCE
    assert "self._stop_requested = True" in inspect.getsource(BaseWorker._shutdown)


def test_the_scheduler_process_is_where_the_worker_kills_it():
    # A wedged job kills the worker and its scheduler child, which RQ keeps in _process.
    assert 'getattr(self.worker.scheduler, "_process", None)' in SOURCE
    assert "self._process = ForkProcess(" in inspect.getsource(RQScheduler.start)


def test_execute_job_is_still_the_one_call_per_job_of_the_work_loop():
    # FlowgateWorker replaces execute_job to run the job in-process (RQ's SimpleWorker does too).
    assert _params(BaseWorker.execute_job) == ["self", "job", "queue"]
    assert "self.execute_job(job, queue)" in inspect.getsource(BaseWorker.work)


def test_the_methods_the_in_process_path_calls_keep_their_shape():
    assert _params(BaseWorker.prepare_execution) == ["self", "job"]
    assert _params(BaseWorker.perform_job)[:4] == ["self", "job", "queue", "execution"]
    assert _params(BaseWorker.maintain_heartbeats) == ["self", "job", "execution"]
    assert _params(BaseWorker.handle_execution_ended) == ["self", "job", "queue", "heartbeat_ttl"]
    assert _params(HerokuWorker.handle_warm_shutdown_request) == ["self"]
    assert _params(BaseWorker.get_heartbeat_ttl)[:2] == ["self", "job"]
    assert isinstance(inspect.getattr_static(BaseWorker, "horse_pid"), property)


def test_the_methods_the_job_threads_lean_on_keep_their_shape():
    # The main thread takes a job only when a thread is free: RQ's dequeue, between its loop's
    # suspension check and execute_job; teardown ends the loop whatever ended it.
    assert _params(BaseWorker.dequeue_job_and_maintain_ttl)[:3] == ["self", "timeout", "max_idle_time"]
    assert "self.dequeue_job_and_maintain_ttl(timeout, max_idle_time)" in inspect.getsource(BaseWorker.work)
    assert "self.teardown()" in inspect.getsource(BaseWorker.work)
    # A job that did not stop at the shutdown deadline is failed as RQ fails one that raised.
    assert _params(BaseWorker.handle_exception)[:2] == ["self", "job"]
    assert _params(BaseWorker.handle_job_failure) == ["self", "job", "queue", "started_job_registry",
                                                      "exc_string", "execution"]
    # RQ's job timeout goes through this class attribute (a signal would reach the main thread only).
    assert "with self.death_penalty_class(timeout" in inspect.getsource(BaseWorker.perform_job)
    # A job id popped just before Redis went away goes back: RQ names it on the error.
    from rq import Queue
    assert "e.job_id = job_id" in inspect.getsource(Queue._fetch_dequeued_job)
    assert "e.queue = queue" in inspect.getsource(Queue._fetch_dequeued_job)
    assert "self.queue_class.dequeue_any(" in inspect.getsource(BaseWorker.dequeue_job_and_maintain_ttl)
    # The main thread's own Redis steps wait for Redis instead of ending the loop.
    assert _params(BaseWorker.check_for_suspension) == ["self", "burst"]
    assert _params(BaseWorker.run_maintenance_tasks) == ["self"]
    assert "self.check_for_suspension(burst)" in inspect.getsource(BaseWorker.work)
    # A SIGTERM while the main thread waits for a thread or a job raises StopRequested (not BUSY).
    assert "raise StopRequested()" in inspect.getsource(BaseWorker._shutdown)


def test_no_other_private_member_of_rq_is_used():
    """Every ``._name`` the worker reads on RQ objects is one of the pinned ones above."""
    import re
    used = set(re.findall(r"(?:self|self\.worker|self\.worker\.scheduler|super\(\))\._([a-z][a-z_]*)",
                          SOURCE))
    used |= set(re.findall(r'getattr\([^,]+, "_([a-z_]+)"', SOURCE))
    own = {"full_beat_at", "wait_for_redis", "put_back_if_never_started", "ride_out", "start_thread",
           "run", "wait_for_a_slot", "slot_freed", "monitor", "app", "redis_gone"}  # FlowgateWorker's own
    assert used - own == {"stop_requested", "process"}, rq.__version__
