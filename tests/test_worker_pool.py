"""`flask worker --processes N`: several workers in one dyno (workers/pool.py), on real processes."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import APP_SECRET, ROOT, project_env, served_settings, venv_bin, wait_for
from workers.queues import enqueue


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@pytest.fixture
def pool(redis_url, keypair, tmp_path):
    env = project_env(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
                      WHATSAPP_APP_SECRET=APP_SECRET, WORKER_PROCESSES=3, **served_settings(),
                      WORKER_THREADS=1)  # one job per process: each process's share is visible
    log = open(tmp_path / "pool.log", "w")
    proc = subprocess.Popen([venv_bin("flask"), "--app", "app", "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_path = tmp_path / "pool.log"
    wait_for(lambda: len(children(proc.pid)) == 3 and "Listening on" in proc.log_path.read_text(),
             timeout=30, message="three workers")
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def sleeps(redis_client, n: int, seconds: float) -> list[str]:
    return [enqueue(redis_client, "time.sleep", seconds).id for _ in range(n)]


def jobs(redis_client, ids):
    return Job.fetch_many(ids, connection=redis_client, serializer=JSONSerializer)


def test_three_workers_share_the_queue_and_one_runs_the_scheduler(pool, redis_client):
    ids = sleeps(redis_client, 6, 0.5)
    wait_for(lambda: all(j.get_status(refresh=True) == "finished" for j in jobs(redis_client, ids)),
             timeout=30, message="six jobs")
    assert len({j.worker_name for j in jobs(redis_client, ids)}) == 3  # all three took jobs
    workers = children(pool.pid)
    schedulers = [c for w in workers for c in children(w)]
    assert len(workers) == 3 and len(schedulers) == 1, (workers, schedulers)


@pytest.mark.parametrize("to", ["group", "parent"])
def test_a_dead_worker_is_replaced_and_sigterm_lets_every_running_job_finish(pool, redis_client, to):
    victim = children(pool.pid)[-1]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(children(pool.pid)) == 3 and victim not in children(pool.pid),
             timeout=15, message="a replacement worker")
    ids = sleeps(redis_client, 3, 2.0)
    wait_for(lambda: all(j.get_status(refresh=True) == "started" for j in jobs(redis_client, ids)),
             timeout=20, message="three jobs running at once")
    if to == "group":
        os.killpg(pool.pid, signal.SIGTERM)  # Heroku: every process of the dyno, parent included
    else:
        os.kill(pool.pid, signal.SIGTERM)  # the parent alone passes it on
    assert pool.wait(timeout=30) == 0, pool.log_path.read_text()
    assert [j.get_status(refresh=True) for j in jobs(redis_client, ids)] == ["finished"] * 3
    assert "cold shut down" not in pool.log_path.read_text()


def test_one_worker_process_runs_its_jobs_at_once_and_sigterm_lets_them_all_finish(redis_url, keypair,
                                                                                  redis_client, tmp_path):
    """The shipped default (WORKER_THREADS): one `flask worker` process, several jobs in flight."""
    env = project_env(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
                      WHATSAPP_APP_SECRET=APP_SECRET, **served_settings())
    log_path = tmp_path / "worker.log"
    proc = subprocess.Popen([venv_bin("flask"), "--app", "app", "worker"], cwd=ROOT, env=env,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Listening on" in log_path.read_text(), timeout=30, message="the worker")
        ids = sleeps(redis_client, 4, 3.0)
        wait_for(lambda: all(j.get_status(refresh=True) == "started" for j in jobs(redis_client, ids)),
                 timeout=20, message="four jobs running at once in one process")
        assert len({j.worker_name for j in jobs(redis_client, ids)}) == 1
        assert len(children(proc.pid)) == 1  # its scheduler: the jobs are threads, not processes
        os.killpg(proc.pid, signal.SIGTERM)  # Heroku: every process of the dyno
        assert proc.wait(timeout=30) == 0, log_path.read_text()
        assert [j.get_status(refresh=True) for j in jobs(redis_client, ids)] == ["finished"] * 4
        assert "cold shut down" not in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
