"""Webhook acknowledgement latency and confirmation throughput, on real processes, with Graph
answering at once AND in 300 ms (as Meta does from afar), in the same run.

1. **Ack latency**: gunicorn (production config, 2 processes) receives signed completion webhooks at
   a steady rate, no worker running; each one is verified, parsed, deduplicated and enqueued
   before the 200. Meta asks for a median ≤ 250 ms; the aim here is p99 ≤ 20 ms.
2. **Drains**, one per row: completions arrive through gunicorn while the workers are suspended
   (``rq suspend``); then 1, 2 or 4 worker dynos, each `flask worker` as the Procfile runs it
   (shipped WORKER_PROCESSES and WORKER_THREADS), work off every completion job, its confirmation
   to the loopback Graph stand-in and every job it enqueues in turn. The figure is completions
   divided by the time from the first job's start to the last job's end, follow-ups included.
   Rows: Graph at 0 ms and at ``BENCH_GRAPH_LATENCY_MS`` (300), each with ``WHATSAPP_THROUGHPUT``
   at 1000/s (an upgraded number: the dynos, not Meta's limit, are measured), and one dyno with
   everything shipped (80/s) against a stand-in that answers 130429 past 80 sends a second.
3. **Steady rate** (the shipped row): webhooks arrive at ``BENCH_STEADY_RATE`` (80/s) while the
   dyno runs; the queues must not grow. End-to-end latency is webhook sent → confirmation
   received by the stand-in.
4. **No-op ceiling**: the same dynos draining jobs that do nothing: RQ's own cost per job on this
   machine, the bound the drains are read against.

Bounds: Meta's default 80 messages/s per number; the no-op ceiling of the same dynos.

    python -m bench.webhooks    (BENCH_RATE, BENCH_SECONDS: the ack phase; BENCH_DYNOS=1,2,4;
                                 BENCH_COMPLETIONS: per dyno; BENCH_GRAPH_LATENCY_MS=300;
                                 BENCH_STEADY_RATE, BENCH_STEADY_SECONDS; WORKER_THREADS,
                                 WORKER_PROCESSES, RQ_FORK_PER_JOB passed on to the dynos)

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

from bench.common import RedisServer, children, free_port, percentile, print_table, wait_for  # noqa: E402
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
    """``count`` worker dynos, each one `flask worker` as the Procfile runs it (its processes and
    threads as shipped, scheduler included)."""

    def __init__(self, env: dict, count: int, logdir: str, root: Path = ROOT):
        cmd = [sys.executable, "-m", "flask", "--app", "app", "worker"]
        self.procs = [subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.STDOUT,
                                       stdout=open(Path(logdir) / f"worker{i}.log", "a"))
                      for i in range(count)]

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


def accepted(graph: GraphStandIn) -> int:
    """Sends the stand-in answered 200 (a 130429 is not a confirmation)."""
    with graph._lock:
        return sum(1 for _, status in graph.answers if status == 200)


def drain(graph: GraphStandIn, work: Queues, expected: int, workers: int, dynos: Workers) -> dict:
    """The workers (started, suspended) work off ``expected`` queued completions and whatever the
    completion jobs enqueue; timed from the first job's start to the last job's end."""
    from rq.suspension import resume

    peak: list[float] = []
    already = accepted(graph)

    def sent_and_sampled():
        peak[:] = [max(a, b) for a, b in zip(peak, dynos.memory_mib())] if peak else dynos.memory_mib()
        return accepted(graph) - already >= expected

    resume(work.redis)
    wait_for(sent_and_sampled, timeout=600, message=f"{expected} confirmations")
    wait_for(lambda: work.backlog() == 0, timeout=600, message="the follow-up jobs")
    jobs = work.finished_jobs()
    start = min(j.started_at for j in jobs).timestamp()
    span = max(j.ended_at for j in jobs).timestamp() - start
    return {"completions": expected, "jobs": len(jobs), "workers": workers, "seconds": round(span, 2),
            "messages_per_s": round(expected / span, 1), "jobs_per_s": round(len(jobs) / span, 1),
            "failed_jobs": work.failed(), "dyno_memory_mib": [round(m) for m in peak]}


def steady(base: str, graph: GraphStandIn, work: Queues, rate: float, seconds: float) -> dict:
    """Webhooks at ``rate`` for ``seconds`` while the workers run: the queues must not grow."""
    already = len(graph.answers)
    before = accepted(graph)
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
        expected = before + ack["statuses"].get(200, 0)
        wait_for(lambda: accepted(graph) >= expected and work.backlog() == 0, timeout=600,
                 message="the steady phase to settle")
        settled_after = time.time() - last_sent
    finally:
        stop.set()
        sampler.join()
    received = {}
    for entry, status in graph.answers[already:]:
        if status == 200:
            received[(entry.json() or {}).get("to")] = entry.at
    latencies = [received[user] - at for user, at in sent_at.items() if user in received]
    return {"target_rate": rate, "seconds": seconds, "webhooks": ack["requests"], "confirmed": len(latencies),
            "achieved_rate": ack["achieved_rate"],
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "latency_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "backlog_max": max(samples, default=0),
            "settled_after_s": round(settled_after, 2), "ack_p99_ms": ack["p99_ms"]}


def rq_ceiling(env: dict, work: Queues, jobs: int, dynos: int, logdir: str) -> dict:
    """The same dynos draining no-op jobs: what RQ's machinery alone allows here, so the
    confirmation figures can be read against it. Started suspended, like the drains: a dyno that
    boots sooner than the others does not take the whole queue alone."""
    from rq.job import Job
    from rq.serializers import JSONSerializer
    from rq.suspension import resume, suspend

    from workers.queues import HIGH, enqueue

    connection = work.redis
    connection.flushall()
    suspend(connection)
    ids = [enqueue(connection, "os.getpid", queue_name=HIGH).id for _ in range(jobs)]
    workers = Workers(env, dynos, logdir)
    try:
        wait_for(lambda: connection.scard("rq:workers") >= dynos, timeout=60, message="the dynos")
        resume(connection)
        wait_for(lambda: work.backlog() == 0, timeout=600, message="the no-op jobs")
    finally:
        workers.stop()
    done = [j for j in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer)
            if j and j.ended_at]
    span = max(j.ended_at for j in done).timestamp() - min(j.started_at for j in done).timestamp()
    return {"jobs": len(done), "jobs_per_s": round(len(done) / span, 1) if span > 0 else None}


def run_row(ctx: dict, label: str, latency: float, dynos: int, throughput: str, completions: int,
            steady_rate: float = 0.0, steady_seconds: float = 0.0) -> dict:
    """One drain: ``completions`` queued through gunicorn with the workers suspended, then
    ``dynos`` dynos at ``throughput`` per number against Graph answering in ``latency`` s."""
    from rq.suspension import suspend

    graph, work = ctx["graph"], ctx["work"]
    graph.chaos(seed=0, retryable=0.0, permanent=0.0, latency=(latency, latency))
    graph.throughput(80 if throughput == "80/s" else None)  # Meta's default tier, enforced
    refused_before = graph.throughput_refusals
    work.redis.flushall()
    suspend(work.redis)
    env = {**ctx["env"], "WHATSAPP_THROUGHPUT": throughput}
    workers = Workers(env, dynos, ctx["tmp"])
    try:
        tag = f"r{len(ctx['rows'])}x"
        ack, _ = post_webhooks(ctx["base"], 400, completions / 400, tag, f"1557{len(ctx['rows'])}")
        wait_for(lambda: work.redis.scard("rq:workers") >= dynos, timeout=60, message="the dynos")
        row = {"row": label, "graph_ms": round(latency * 1000), "dynos": dynos, "throughput": throughput,
               **drain(graph, work, ack["statuses"].get(200, 0), dynos, workers)}
        if steady_rate:
            row["steady"] = steady(ctx["base"], graph, work, steady_rate, steady_seconds)
    finally:
        workers.stop()
    row["graph_130429"] = graph.throughput_refusals - refused_before
    ctx["rows"].append(row)
    return row


def main() -> dict:
    rate = float(os.environ.get("BENCH_RATE", "200"))
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    steady_rate = float(os.environ.get("BENCH_STEADY_RATE", "80"))
    steady_seconds = float(os.environ.get("BENCH_STEADY_SECONDS", "8"))
    dyno_counts = [int(n) for n in os.environ.get("BENCH_DYNOS", "1,2,4").split(",")]
    per_dyno = int(os.environ.get("BENCH_COMPLETIONS", "400"))
    latency = float(os.environ.get("BENCH_GRAPH_LATENCY_MS", "300")) / 1000
    import config

    shipped = config.defaults()
    processes = os.environ.get("WORKER_PROCESSES") or shipped["WORKER_PROCESSES"]
    threads = os.environ.get("WORKER_THREADS") or shipped["WORKER_THREADS"]
    private_pem, _ = keys.generate()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log costs CPU
    with tempfile.TemporaryDirectory() as tmp, GraphStandIn() as graph:
        redis_server = RedisServer(Path(tmp)).__enter__()
        port = free_port()
        # The dynos get what the Procfile gives them: no WORKER_* unless this run was given one.
        passed = {k: os.environ[k] for k in ("WORKER_PROCESSES", "WORKER_THREADS", "RQ_FORK_PER_JOB")
                  if k in os.environ}
        env = _env(redis_server.url, graph.url, private_pem, **passed)
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=ROOT,
                               env={**env, "PORT": str(port), "WEB_CONCURRENCY": "2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        ctx = {"graph": graph, "env": env, "tmp": tmp, "base": base, "rows": []}
        ceilings = {}
        try:
            def healthy():
                try:
                    return requests.get(f"{base}/health", timeout=1).status_code == 200
                except requests.ConnectionError:
                    return False

            wait_for(healthy, timeout=30, message="gunicorn")
            ack, _ = post_webhooks(base, rate, seconds, "ack", "1555")
            ctx["work"] = Queues(redis_server.url)
            run_row(ctx, "shipped: Procfile, every default", latency, 1, shipped["WHATSAPP_THROUGHPUT"],
                    per_dyno, steady_rate, steady_seconds)
            for dynos in dyno_counts:
                for lat in (0.0, latency):
                    run_row(ctx, f"{dynos} dyno(s), upgraded number", lat, dynos, "1000/s", per_dyno * dynos)
                ceilings[dynos] = rq_ceiling(env, ctx["work"], per_dyno * dynos * 2, dynos, tmp)
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
            redis_server.__exit__(None, None, None)
    return report(ctx["rows"], ceilings, ack, rate, processes, threads, latency)


def report(rows: list[dict], ceilings: dict, ack: dict, rate: float, processes, threads,
           latency: float) -> dict:
    for row in rows:
        ceiling = ceilings.get(row["dynos"], {}).get("jobs_per_s")
        row["x_meta_80"] = round(row["messages_per_s"] / FLOOR, 2)
        row["of_rq_ceiling"] = round(row["jobs_per_s"] / ceiling, 2) if ceiling else None
        same = [r for r in rows
                if r["dynos"] == row["dynos"] and r["graph_ms"] == 0 and r["throughput"] == "1000/s"]
        row["of_0ms"] = round(row["messages_per_s"] / same[0]["messages_per_s"], 2) if same else None
    result = {"webhook_ack": ack, "rows": rows, "rq_noop_ceiling": ceilings,
              "worker_processes": processes, "worker_threads": threads, "cpus": os.cpu_count(),
              "load_average_1m": round(os.getloadavg()[0], 2)}
    print(f"webhook ack   {ack['requests']} requests at {ack['achieved_rate']}/s (target {rate}/s): "
          f"p50 {ack['p50_ms']} ms, p99 {ack['p99_ms']} ms, max {ack['max_ms']} ms "
          f"(Meta: median <= 250 ms; aim p99 <= 20 ms)  statuses {ack['statuses']}")
    print_table(f"confirmations, each dyno `flask worker` as shipped ({processes} process x {threads} "
                f"threads); Graph answering in 0 ms and in {latency * 1000:.0f} ms; {os.cpu_count()} CPUs, "
                f"load average {result['load_average_1m']}",
                ["row", "Graph ms", "dynos", "WHATSAPP_THROUGHPUT", "msg/s", "x Meta's 80/s", "jobs/s",
                 "of RQ no-op ceiling", "of same dynos at 0 ms", "130429 answered", "peak PSS MiB/dyno"],
                [[r["row"], r["graph_ms"], r["dynos"], r["throughput"], r["messages_per_s"], r["x_meta_80"],
                  r["jobs_per_s"], r["of_rq_ceiling"] if r["of_rq_ceiling"] is not None else float("nan"),
                  r["of_0ms"] if r["of_0ms"] is not None else float("nan"), r["graph_130429"],
                  max(r["dyno_memory_mib"], default=0)] for r in rows])
    print_table("RQ no-op ceiling (same dynos, jobs that do nothing)", ["dynos", "jobs", "jobs/s"],
                [[d, c["jobs"], c["jobs_per_s"]] for d, c in ceilings.items()])
    for row in rows:
        if "steady" in row:
            flow = row["steady"]
            print(f"\nsteady ({row['row']}, Graph {row['graph_ms']} ms): {flow['webhooks']} webhooks at "
                  f"{flow['achieved_rate']}/s: {flow['confirmed']} confirmed, webhook -> confirmation p50 "
                  f"{flow['latency_p50_ms']} ms, p99 {flow['latency_p99_ms']} ms; backlog max "
                  f"{flow['backlog_max']} jobs, settled {flow['settled_after_s']} s after the last webhook")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
