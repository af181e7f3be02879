"""The RQ internals FlowgateWorker (workers/queues.py) still leans on, pinned against the
installed rq: public hooks were used wherever RQ 3.0 has them (``horse_pid``, raising
ShutDownImminentException ourselves); what is left has no public equivalent. An RQ upgrade that
renames or reshapes one fails here, in CI, not in a production worker."""
from __future__ import annotations

import inspect

import rq
from rq.scheduler import RQScheduler
from rq.worker import BaseWorker, HerokuWorker

from workers import queues

SOURCE = inspect.getsource(queues)


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


def test_no_other_private_member_of_rq_is_used():
    """Every ``._name`` the worker reads on RQ objects is one of the pinned ones above."""
    import re
    used = set(re.findall(r"(?:self|self\.worker|self\.worker\.scheduler|super\(\))\._([a-z][a-z_]*)",
                          SOURCE))
    used |= set(re.findall(r'getattr\([^,]+, "_([a-z_]+)"', SOURCE))
    own = {"watch", "full_beat_at", "perform_here", "wait_for_redis", "put_back_if_never_started",
           "interrupt_job", "done", "wedged"}  # FlowgateWorker's and _JobWatch's own
    assert used - own == {"stop_requested", "process"}, rq.__version__
