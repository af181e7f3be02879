"""Webhook acknowledgement latency and confirmation throughput, on real processes.

1. **Ack latency**: gunicorn (production config, 2 processes) receives signed completion webhooks at
   a steady rate, no worker running; each one is verified, parsed, deduplicated and enqueued
   before the 200. Meta asks for a median ≤ 250 ms; the aim here is p99 ≤ 20 ms.
2. **Drain**: real `flask worker` processes (as the Procfile runs them) work off what phase 1
   left: every completion job, its confirmation to the loopback Graph stand-in, and every job it
   enqueues in turn (the post-completion job on the low queue). The figure is completions divided
   by the time from the first job's start to the last job's end, follow-ups included.
3. **Steady rate**: webhooks arrive through gunicorn at ``BENCH_STEADY_RATE`` while the same
   workers run; the queues must not grow (backlog sampled every 0.25 s) and every confirmation
   and follow-up must be done shortly after the last webhook. End-to-end latency is webhook sent
   → confirmation received by the stand-in.
4. **No-op ceiling**: the same number of workers draining jobs that do nothing: RQ's own cost per
   job on this machine, the bound the figures above are read against.

Floor for 2 and 3: Meta's default 80 messages/s per number.

    python -m bench.webhooks    (BENCH_RATE, BENCH_SECONDS, BENCH_DYNOS, BENCH_WORKERS, BENCH_STEADY_RATE,
                                 BENCH_STEADY_SECONDS; RQ_FORK_PER_JOB=1 for RQ's fork per job;
                                 BENCH_GRAPH_LATENCY_MS: the stand-in answers that much later,
                                 as Meta does from afar)

Nothing leaves 127.0.0.1: a private redis-server on an ephemeral port, the Graph stand-in in this
process.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import RedisServer, children, free_port, percentile, wait_for  # noqa: E402
from flows import keys  # noqa: E402
from flows.signing import HEADER, sign  # noqa: E402
from standins.graph import ACCESS_TOKEN, GraphStandIn  # noqa: E402
from standins.meta_webhooks import body_of, completion, messages_change  # noqa: E402

SECRET = "bench-app-secret"
PHONE_ID = "106540352242922"
FLOOR = 80.0  # messages/s: Meta's default throughput per business number


def _env(redis_url: str, graph_url: str, private_pem: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW_", "WHATSAPP_", "REDIS_"))}
    env.update(PYTHONPATH=str(ROOT), APP_ENV="production", REDIS_URL=redis_url,
               FLOW_PRIVATE_KEY=private_pem, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_API_BASE=graph_url,
               WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_ID, LOG_LEVEL="WARNING",
               SECRET_KEY="bench-secret-key", DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/records.sqlite3")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def post_webhooks(base_url: str, rate: float, seconds: float, tag: str, prefix: str) -> tuple[dict, dict]:
    """Send ``rate`` distinct signed completions per second for ``seconds``, each from its own
    user (``prefix`` + a number). Returns the latency summary and user → time it was sent."""
    total = int(rate * seconds)
    users = [f"{prefix}{i:08d}" for i in range(total)]
    bodies = [body_of(messages_change([completion(token=f"fg_{tag}{i}", user=users[i])]))
              for i in range(total)]
    local = threading.local()
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def send(i: int):
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        raw = bodies[i]
        t0, wall = time.perf_counter(), time.time()
        resp = session.post(f"{base_url}/webhooks/whatsapp", data=raw, timeout=10,
                            headers={HEADER: sign(SECRET, raw), "Content-Type": "application/json"})
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)
            sent_at[users[i]] = wall
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(send, range(total)))
    wall = time.perf_counter() - start
    return {"requests": total, "target_rate": rate, "achieved_rate": round(total / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2), "statuses": statuses}, sent_at


class Queues:
    """What the workers still have to do: queued + running jobs on every Flowgate queue."""

    def __init__(self, redis_url: str):
        import redis
        from rq.registry import StartedJobRegistry

        from workers.queues import QUEUES, queue

        self.redis = redis.Redis.from_url(redis_url)
        self.queues = [queue(self.redis, name) for name in QUEUES]
        self.started = [StartedJobRegistry(queue=q) for q in self.queues]

    def backlog(self) -> int:
        with self.redis.pipeline(transaction=False) as pipe:
            for q, started in zip(self.queues, self.started):
                pipe.llen(q.key)
                pipe.zcard(started.key)
            return sum(pipe.execute())

    def finished_jobs(self) -> list:
        """Every job that ended successfully, from the queues' finished registries."""
        from rq.job import Job

        ids = [job_id for q in self.queues for job_id in q.finished_job_registry.get_job_ids()]
        jobs = Job.fetch_many(ids, connection=self.redis, serializer=self.queues[0].serializer)
        return [j for j in jobs if j is not None and j.started_at and j.ended_at]

    def failed(self) -> int:
        return sum(q.failed_job_registry.count for q in self.queues)


class Workers:
    """``count`` worker dynos, each one `flask worker` as the Procfile runs it (its pool of
    WORKER_PROCESSES processes, scheduler included)."""

    def __init__(self, env: dict, count: int, logdir: str, root: Path = ROOT):
        self.procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=root,
                                       env=env, stdout=open(Path(logdir) / f"worker{i}.log", "w"),
                                       stderr=subprocess.STDOUT) for i in range(count)]

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=30)

    def memory_mib(self) -> list[float]:
        """Each dyno's process tree, proportional set size (shared pages counted once, as a
        dyno's memory limit counts them)."""
        return [sum(_pss_kib(pid) for pid in _tree(proc.pid)) / 1024 for proc in self.procs]


def _tree(pid: int) -> list[int]:
    return [pid] + [p for child in children(pid) for p in _tree(child)]


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
    except FileNotFoundError:
        return 0


def drain(graph: GraphStandIn, work: Queues, expected: int, workers: int, dynos: "Workers") -> dict:
    """The workers (already started) work off ``expected`` queued completions and whatever the
    completion jobs enqueue; timed from the first job's start to the last job's end."""
    # len() of the record, not sent_messages(): parsing every body on each poll would steal CPU.
    peak: list[float] = []

    def sent_and_sampled():
        peak[:] = [max(a, b) for a, b in zip(peak, dynos.memory_mib())] if peak else dynos.memory_mib()
        return len(graph.requests) >= expected

    wait_for(sent_and_sampled, timeout=600, message=f"{expected} confirmations")
    wait_for(lambda: work.backlog() == 0, timeout=600, message="the follow-up jobs")
    jobs = work.finished_jobs()
    start = min(j.started_at for j in jobs).timestamp()
    span = max(j.ended_at for j in jobs).timestamp() - start
    sends = sorted(r.at for r in graph.matching("POST", "/messages"))
    return {"completions": expected, "jobs": len(jobs), "workers": workers, "seconds": round(span, 2),
            "messages_per_s": round(expected / span, 1), "jobs_per_s": round(len(jobs) / span, 1),
            # What this benchmark reported before follow-ups were counted: first to last send.
            "confirmations_only_per_s": round((len(sends) - 1) / (sends[-1] - sends[0]), 1),
            "failed_jobs": work.failed(), "dyno_memory_mib": [round(m) for m in peak]}


def steady(base: str, graph: GraphStandIn, work: Queues, rate: float, seconds: float) -> dict:
    """Webhooks at ``rate`` for ``seconds`` while the workers run: the queues must not grow."""
    already = len(graph.requests)
    samples: list[int] = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.25):
            samples.append(work.backlog())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        ack, sent_at = post_webhooks(base, rate, seconds, "steady", "1556")
        last_sent = time.time()
        expected = already + ack["statuses"].get(200, 0)
        wait_for(lambda: len(graph.requests) >= expected and work.backlog() == 0, timeout=600,
                 message="the steady phase to settle")
        settled_after = time.time() - last_sent
    finally:
        stop.set()
        sampler.join()
    received = {}
    for entry in graph.matching("POST", "/messages")[already:]:
        received[(entry.json() or {}).get("to")] = entry.at
    latencies = [received[user] - at for user, at in sent_at.items() if user in received]
    half = samples[len(samples) // 2: int(len(samples) * 0.9)] or samples
    return {"target_rate": rate, "seconds": seconds, "webhooks": ack["requests"], "confirmed": len(latencies),
            "achieved_rate": ack["achieved_rate"],
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "latency_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "backlog_max": max(samples, default=0),
            "backlog_mean_second_half": round(sum(half) / max(len(half), 1), 1),
            "settled_after_s": round(settled_after, 2), "ack_p99_ms": ack["p99_ms"]}


def rq_ceiling(env: dict, redis_url: str, jobs: int, dynos: int) -> dict:
    """The same workers draining no-op jobs: what RQ's machinery alone allows here, so the
    confirmation figures can be read against it."""
    import redis
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from workers.queues import HIGH, enqueue

    connection = redis.Redis.from_url(redis_url)
    ids = [enqueue(connection, "os.getpid", queue_name=HIGH).id for _ in range(jobs)]
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(dynos)]
    for proc in procs:
        proc.wait(timeout=600)
    done = [j for j in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer)
            if j and j.ended_at]
    span = max(j.ended_at for j in done).timestamp() - min(j.started_at for j in done).timestamp()
    return {"jobs": len(done), "jobs_per_s": round(len(done) / span, 1) if span > 0 else None}


def main() -> dict:
    rate = float(os.environ.get("BENCH_RATE", "200"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    steady_rate = float(os.environ.get("BENCH_STEADY_RATE", "120"))
    steady_seconds = float(os.environ.get("BENCH_STEADY_SECONDS", "15"))
    # BENCH_DYNOS worker dynos as the Procfile runs them (WORKER_PROCESSES each, config's default
    # unless set); BENCH_WORKERS=N instead runs N single-process workers (the old model).
    if "BENCH_WORKERS" in os.environ:
        dynos, per_dyno = int(os.environ["BENCH_WORKERS"]), 1
    else:
        import config
        dynos = int(os.environ.get("BENCH_DYNOS", "1"))
        per_dyno = int(os.environ.get("WORKER_PROCESSES") or config.defaults()["WORKER_PROCESSES"])
    worker_count = dynos * per_dyno
    fork = os.environ.get("RQ_FORK_PER_JOB", "").lower() in ("1", "true", "yes", "on")
    latency = float(os.environ.get("BENCH_GRAPH_LATENCY_MS", "0")) / 1000
    private_pem, _ = keys.generate()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log costs CPU
    with tempfile.TemporaryDirectory() as tmp, GraphStandIn() as graph:
        if latency:  # every send waits; none fails
            graph.chaos(seed=0, retryable=0.0, permanent=0.0, latency=(latency, latency))
        redis_server = RedisServer(Path(tmp)).__enter__()
        port = free_port()
        env = _env(redis_server.url, graph.url, private_pem, WORKER_PROCESSES=per_dyno)
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=ROOT,
                               env={**env, "PORT": str(port), "WEB_CONCURRENCY": "2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        workers = None
        try:
            def healthy():
                try:
                    return requests.get(f"{base}/health", timeout=1).status_code == 200
                except requests.ConnectionError:
                    return False

            wait_for(healthy, timeout=30, message="gunicorn")
            ack, _ = post_webhooks(base, rate, seconds, "ack", "1555")
            work = Queues(redis_server.url)
            workers = Workers(env, dynos, tmp)
            thru = drain(graph, work, ack["statuses"].get(200, 0), worker_count, workers)
            flow = steady(base, graph, work, steady_rate, steady_seconds)
            workers.stop()
            workers = None
            ceiling = rq_ceiling(env, redis_server.url, ack["statuses"].get(200, 0), dynos)
        finally:
            if workers is not None:
                workers.stop()
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
            redis_server.__exit__(None, None, None)
    # Other processes on the machine change every figure: say how busy it was.
    result = {"webhook_ack": ack, "confirmations": thru, "steady": flow, "rq_noop_ceiling": ceiling,
              "fork_per_job": fork, "graph_latency_ms": latency * 1000, "cpus": os.cpu_count(),
              "load_average_1m": round(os.getloadavg()[0], 2)}
    mode = "a fork per job" if fork else "jobs in the worker process"
    print(f"webhook ack   {ack['requests']} requests at {ack['achieved_rate']}/s (target {rate}/s): "
          f"p50 {ack['p50_ms']} ms, p99 {ack['p99_ms']} ms, max {ack['max_ms']} ms "
          f"(Meta: median <= 250 ms; aim p99 <= 20 ms)  statuses {ack['statuses']}")
    print(f"confirmations {thru['completions']} completions + follow-ups ({thru['jobs']} jobs) via "
          f"{dynos} dyno(s) x {per_dyno} worker processes = {thru['workers']} "
          f"({mode}{f', Graph answering in {latency * 1000:.0f} ms' if latency else ''}) in "
          f"{thru['seconds']} s: {thru['messages_per_s']} messages/s sustained, "
          f"{thru['messages_per_s'] / FLOOR:.2f}x the floor of {FLOOR:.0f}/s (confirmations alone "
          f"{thru['confirmations_only_per_s']}/s) on {os.cpu_count()} CPUs, load average "
          f"{result['load_average_1m']}; peak memory per dyno (PSS) {thru['dyno_memory_mib']} MiB")
    print(f"steady        {flow['webhooks']} webhooks at {flow['achieved_rate']}/s with the workers running: "
          f"{flow['confirmed']} confirmed, webhook -> confirmation p50 {flow['latency_p50_ms']} ms, "
          f"p99 {flow['latency_p99_ms']} ms; backlog max {flow['backlog_max']} jobs, "
          f"settled {flow['settled_after_s']} s after the last webhook")
    print(f"rq ceiling    {ceiling['jobs']} no-op jobs via the same workers: {ceiling['jobs_per_s']} jobs/s "
          f"(RQ's Redis bookkeeping{' + the fork' if fork else ''}, before any work); the drain ran "
          f"{thru['jobs_per_s']} jobs/s = {thru['jobs_per_s'] / ceiling['jobs_per_s']:.2f} of it")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
