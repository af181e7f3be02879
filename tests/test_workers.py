"""Real `flask worker` processes against the Graph stand-in: duplicates, a worker SIGKILLed
mid-send, SIGTERM, retryable and permanent errors; jobs running in the worker process (the
default) kept alive by their heartbeat, stopped by the warm-shutdown deadline, or taking a wedged
worker down; RQ's fork per job (RQ_FORK_PER_JOB) where it behaves differently.

Retry waits, effect leases and RQ's maintenance interval are shortened through configuration,
exactly as an operator would set them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.worker import Worker

from app import create_app
from conftest import APP_SECRET, ROOT, project_env, served_settings, venv_bin, wait_for
from flows.webhook import digest
from messaging import fallback
from standins.graph import ACCESS_TOKEN, GraphStandIn, graph_error
from standins.meta_webhooks import body_of, completion, messages_change, signed_headers
from workers.effects import Effects
from workers.queues import BACKOFF, HIGH, enqueue, queue

PHONE_ID = "106540352242922"
FAST = {"JOB_RETRY_BACKOFF": "1", "JOB_MAX_RETRIES": "3", "EFFECT_LEASE_SECONDS": "2",
        "RQ_MAINTENANCE_INTERVAL": "1", "RQ_JOB_MONITORING_INTERVAL": "1", "RQ_WORKER_TTL": "16"}
WAMID_OK = {"messaging_product": "whatsapp", "messages": [{"id": "wamid.slow-but-accepted"}]}


@pytest.fixture
def app(app_config, graph):
    return create_app({**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                       "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "FOLLOWUP_CHANNEL": "cloud",
                       "JOB_RETRY_BACKOFF": (1,), "JOB_MAX_RETRIES": 3,
                       "EFFECT_LEASE_SECONDS": 2})


class WorkerProcess:
    """`flask --app app worker` as Procfile runs it; output goes to a file (a pipe could fill)."""

    def __init__(self, redis_url: str, graph: GraphStandIn, keypair, log: Path, **settings):
        env = project_env(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
                          WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_API_BASE=graph.url,
                          WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
                          **{**served_settings(FOLLOWUP_CHANNEL="cloud"), **FAST, **settings})
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen([venv_bin("flask"), "--app", "app", "worker"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, connection):
        wait_for(lambda: self.proc.poll() is None and any(
            w.pid == self.proc.pid for w in Worker.all(connection=connection)),
            timeout=20, message=f"worker registration; log: {self.output()}")

    def tree(self) -> list[int]:
        """The worker, its scheduler and its horse: Heroku signals every process of the dyno."""
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except FileNotFoundError:
                pass
        return pids

    def horses(self, connection) -> list[int]:
        """Children of the worker other than its scheduler: RQ's work horses."""
        scheduler = {int(pid) for key in connection.scan_iter("rq:scheduler:*")
                     for pid in [connection.hget(key, "pid")] if pid}
        return [pid for pid in self.tree()[1:] if pid not in scheduler]

    def signal_all(self, sig):
        for pid in self.tree():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.signal_all(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def workers(redis_url, graph, keypair, tmp_path, redis_client, app_config):
    started = []

    def start(**settings) -> WorkerProcess:
        # The records store of the test's app (app_config's SQLite file), shared with the workers.
        settings.setdefault("DATABASE_URL", app_config["DATABASE_URL"])
        worker = WorkerProcess(redis_url, graph, keypair, tmp_path / f"worker{len(started)}.log", **settings)
        started.append(worker)
        worker.wait_ready(redis_client)
        return worker

    yield start
    for worker in started:
        worker.stop()


def deliver(app, message, times: int = 1):
    raw = body_of(messages_change([message]))
    client = app.test_client()
    for _ in range(times):
        assert client.post("/webhooks/whatsapp", data=raw,
                           headers=signed_headers(raw, APP_SECRET)).status_code == 200
    return Job.fetch(f"completion-{digest(message['id'])}", connection=app.extensions["redis"],
                     serializer=JSONSerializer)


def finished(job: Job) -> bool:
    return job.get_status(refresh=True) == "finished"


def test_same_completion_delivered_three_times_confirms_once(app, graph, workers, redis_client):
    job = deliver(app, completion(token="fg_dup"), times=3)
    workers()
    wait_for(lambda: finished(job), timeout=20, message="the completion job")
    assert len(graph.sent_messages()) == 1
    assert app.extensions["sessions"].get("fg_dup")["state"] == "completed"
    assert queue(redis_client, HIGH).count == 0


def test_retryable_error_then_success_honours_retry_after(app, graph, workers):
    graph.fail_next(429, graph_error(130429, "rate limit hit"), headers={"Retry-After": "2"})
    job = deliver(app, completion(token="fg_429"))
    workers()
    wait_for(lambda: finished(job), timeout=30, message="the retried completion job")
    first, second = graph.matching("POST", "/messages")
    # Configured backoff is 1 s; Meta's Retry-After of 2 s wins (the time bound is the feature).
    assert second.at - first.at >= 1.9
    job.refresh()
    assert job.retries_left == 2
    assert [e["event"] for e in app.extensions["sessions"].timeline("fg_429")][-1] == "confirmation_sent"


def test_permanent_error_is_recorded_and_not_retried(app, graph, workers):
    graph.fail_next(400, graph_error(131026, "Message undeliverable"))
    job = deliver(app, completion(token="fg_perm"))
    worker = workers()
    wait_for(lambda: finished(job), timeout=20, message="the completion job")
    job.refresh()
    assert len(graph.sent_messages()) == 1 and job.retries_left == 3
    (case,) = fallback.pending(app.extensions["redis"])
    assert (case["reason"], case["code"]) == ("permanent", 131026)
    assert "Traceback" not in worker.output()


# The worker imports a job's module inside the job's timeout: these jobs live in a module that
# imports nothing heavy (tests/worker_jobs.py), found through this PYTHONPATH.
JOBS_PATH = f"{ROOT}:{ROOT / 'tests'}"


def test_the_jobs_module_the_workers_import_stays_light():
    loaded = subprocess.run(
        [venv_bin("python"), "-c", "import sys; before = set(sys.modules); import worker_jobs; "
                                   "print(' '.join(sorted(set(sys.modules) - before)))"],
        env=project_env(PYTHONPATH=JOBS_PATH), capture_output=True, text=True, check=True).stdout.split()
    assert "worker_jobs" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in {"conftest", "hypothesis", "app", "flask",
                                                      "pytest", "rq"}]
    assert heavy == [], f"worker_jobs imports {heavy}: the worker would import them inside a job's timeout"


@pytest.mark.parametrize("fork", ["0", "1"], ids=["in-process", "fork-per-job"])
def test_sigterm_lets_the_running_job_finish(app, graph, workers, redis_client, fork):
    graph.fail_next(200, WAMID_OK, delay=2)
    message = completion(token="fg_term")
    job = deliver(app, message)
    worker = workers(RQ_FORK_PER_JOB=fork)
    wait_for(lambda: graph.sent_messages(), timeout=20, message="the send to start")
    # The job runs in the worker itself unless RQ_FORK_PER_JOB asks for a horse per job.
    assert len(worker.horses(redis_client)) == int(fork)
    worker.signal_all(signal.SIGTERM)  # every process, as Heroku does
    assert worker.proc.wait(timeout=20) == 0, worker.output()
    assert finished(job)
    assert len(graph.sent_messages()) == 1
    assert Effects(app.extensions["redis"], 2).state(f"confirm:{message['id']}")["state"] == "done"


@pytest.mark.slow(reason="waits for the 20 s shutdown delay")
def test_sigterm_stops_a_job_still_running_after_the_shutdown_delay(workers, redis_client):
    job = enqueue(redis_client, "worker_jobs.pause", 40, queue_name=HIGH)  # outlasts Heroku's 30 s
    worker = workers(PYTHONPATH=JOBS_PATH)
    wait_for(lambda: job.get_status(refresh=True) == "started", message="the job to start")
    sent_term = time.monotonic()
    worker.signal_all(signal.SIGTERM)
    assert worker.proc.wait(timeout=28) == 0, worker.output()  # on its own, before the SIGKILL
    assert 19 <= time.monotonic() - sent_term < 25  # imminent_shutdown_delay = 20 s
    job.refresh()
    assert job.get_status() == "scheduled" and job.retries_left == len(BACKOFF) - 1  # retried later
    assert "ShutDownImminentException" in worker.output()


def test_a_long_job_keeps_its_heartbeat_and_is_never_taken_for_abandoned(app, graph, workers, redis_client):
    # With a 2 s grace, a job whose execution was not refreshed would be abandoned 3 s in.
    graph.fail_next(200, WAMID_OK, delay=6)
    job = deliver(app, completion(token="fg_long"))
    workers(RQ_HEARTBEAT_GRACE="2")
    wait_for(lambda: graph.sent_messages(), timeout=20, message="the send to start")
    workers(RQ_HEARTBEAT_GRACE="2")  # idle, so its maintenance looks for abandoned jobs every second
    registry = StartedJobRegistry(HIGH, connection=redis_client, serializer=JSONSerializer)

    def done():
        registry.cleanup()  # what maintenance does, on every poll
        return finished(job)

    wait_for(done, timeout=20, message="the long job")
    job.refresh()
    assert job.retries_left == 3, "the job was taken for abandoned and retried"
    assert len(graph.sent_messages()) == 1 and fallback.pending(redis_client) == []


def test_a_job_wedged_past_its_timeout_takes_the_worker_down(redis_client, workers, tmp_path):
    """RQ kills a horse that outlives its timeout by the grace; in the worker's own process that
    means the worker (and its scheduler): Heroku restarts it, the job is recovered as abandoned."""
    worker = workers(RQ_HEARTBEAT_GRACE="2", PYTHONPATH=JOBS_PATH)
    # The job goes in once the worker and its scheduler are seen: its death cannot outrun the look.
    scheduler_and_worker = wait_for(lambda: len(worker.tree()) == 2 and worker.tree(),
                                    message="the scheduler")
    job = queue(redis_client, HIGH).enqueue("worker_jobs.stuck", 60, job_timeout=1)
    assert worker.proc.wait(timeout=20) == -signal.SIGKILL, worker.output()
    assert "past its timeout" in worker.output()
    assert not [pid for pid in scheduler_and_worker if running(pid)], "its scheduler outlived it"
    assert job.get_status(refresh=True) == "started"  # for the abandoned-job recovery


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("real_time", [
    False,
    pytest.param(True, marks=pytest.mark.slow(reason="waits ~75 s for RQ's own abandoned-job detection")),
])
def test_worker_killed_mid_send_is_recovered_without_a_second_confirmation(
        app, graph, workers, redis_client, real_time):
    graph.fail_next(200, WAMID_OK, delay=4)  # the stand-in holds the request: the kill lands mid-send
    message = completion(token="fg_kill")
    job = deliver(app, message)
    first = workers()
    wait_for(lambda: graph.sent_messages(), timeout=20, message="the send to start")
    first.signal_all(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert job.get_status(refresh=True) == "started"  # abandoned: nobody will finish it by itself
    if not real_time:
        # RQ declares the job abandoned 60 s + job_monitoring_interval after its last heartbeat,
        # and the dead worker's scheduler lock (needed to run the scheduled retry) expires 61 s
        # after its last refresh. Skip that minute: expire the lock as its TTL would, and ask the
        # registry for the cleanup RQ's maintenance would run then. FLOWGATE_SLOW_TESTS=1 waits.
        for lock in redis_client.scan_iter("rq:scheduler-lock:*"):
            redis_client.delete(lock)
        registry = StartedJobRegistry(HIGH, connection=redis_client, serializer=JSONSerializer)
        registry.cleanup(timestamp=time.time() + 120)
    workers()  # the replacement dyno
    wait_for(lambda: finished(job), timeout=120 if real_time else 30, message="the recovered job")
    assert len(graph.sent_messages()) == 1, "the confirmation went out once"
    (case,) = fallback.pending(redis_client)
    assert case["reason"] == "unknown_outcome" and case["flow_token"] == "fg_kill"
    assert app.extensions["sessions"].get("fg_kill")["state"] == "completed"
    assert app.extensions["records"].submissions.get(f"sub_{digest(message['id'])[:24]}") is not None
