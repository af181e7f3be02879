"""Webhook acknowledgement latency and confirmation throughput, on real processes.

1. **Ack latency**: gunicorn (production config, 2 processes) receives signed completion webhooks at
   a steady rate; each one is verified, parsed, deduplicated and enqueued before the 200. Meta asks
   for a median ≤ 250 ms; the aim here is p99 ≤ 20 ms.
2. **Confirmation throughput**: the jobs that phase 1 left in Redis are drained by real
   `flask worker` processes (one fork per job, as in production) sending confirmations to the
   loopback Graph stand-in. Floor: Meta's default 80 messages/s per number.

    python -m bench.webhooks            (BENCH_RATE, BENCH_SECONDS, BENCH_WORKERS to vary)

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

from bench.common import RedisServer, free_port, percentile, wait_for  # noqa: E402
from flows import keys  # noqa: E402
from flows.signing import HEADER, sign  # noqa: E402
from standins.graph import ACCESS_TOKEN, GraphStandIn  # noqa: E402
from standins.meta_webhooks import body_of, completion, messages_change  # noqa: E402

SECRET = "bench-app-secret"
PHONE_ID = "106540352242922"


def _env(redis_url: str, graph_url: str, private_pem: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW_", "WHATSAPP_", "REDIS_"))}
    env.update(PYTHONPATH=str(ROOT), APP_ENV="production", REDIS_URL=redis_url,
               FLOW_PRIVATE_KEY=private_pem, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_API_BASE=graph_url,
               WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_ID, LOG_LEVEL="WARNING")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ack_latency(base_url: str, rate: float, seconds: float) -> dict:
    """Send ``rate`` distinct signed completions per second for ``seconds``; latency per request."""
    total = int(rate * seconds)
    bodies = [body_of(messages_change([completion(token=f"fg_bench{i}")])) for i in range(total)]
    local = threading.local()
    latencies: list[float] = []
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
        t0 = time.perf_counter()
        resp = session.post(f"{base_url}/webhooks/whatsapp", data=raw, timeout=10,
                            headers={HEADER: sign(SECRET, raw), "Content-Type": "application/json"})
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(send, range(total)))
    wall = time.perf_counter() - start
    return {"requests": total, "target_rate": rate, "achieved_rate": round(total / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2), "statuses": statuses}


def throughput(env: dict, graph: GraphStandIn, expected: int, workers: int, logdir: str) -> dict:
    """Start ``workers`` `flask worker` processes and time the confirmations they send."""
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                              stdout=open(Path(logdir) / f"worker{i}.log", "w"), stderr=subprocess.STDOUT)
             for i in range(workers)]
    try:
        # len() of the record, not sent_messages(): parsing every body on each poll would steal CPU.
        wait_for(lambda: len(graph.requests) >= expected, timeout=600, what=f"{expected} confirmations")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    times = sorted(r.at for r in graph.matching("POST", "/messages"))
    span = times[-1] - times[0]
    return {"messages": len(times), "workers": workers, "seconds": round(span, 2),
            "messages_per_s": round((len(times) - 1) / span, 1) if span > 0 else None}


def rq_ceiling(env: dict, redis_url: str, jobs: int, workers: int) -> dict:
    """The same workers draining no-op jobs: what RQ's fork-per-job machinery alone allows here,
    so the confirmation figure can be read against it."""
    import redis
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from workers.queues import HIGH, enqueue

    connection = redis.Redis.from_url(redis_url)
    ids = [enqueue(connection, "os.getpid", queue_name=HIGH).id for _ in range(jobs)]
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    for proc in procs:
        proc.wait(timeout=600)
    done = [j for j in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer) if j and j.ended_at]
    span = max(j.ended_at for j in done).timestamp() - min(j.started_at for j in done).timestamp()
    return {"jobs": len(done), "jobs_per_s": round(len(done) / span, 1) if span > 0 else None}


def main() -> dict:
    rate = float(os.environ.get("BENCH_RATE", "200"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    # Jobs wait on the Graph API part of the time: a few more workers than CPUs keeps them busy.
    worker_count = int(os.environ.get("BENCH_WORKERS", str(3 * (os.cpu_count() or 1))))
    private_pem, _ = keys.generate()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log costs CPU
    with tempfile.TemporaryDirectory() as tmp, GraphStandIn() as graph:
        redis_server = RedisServer(Path(tmp)).__enter__()
        redis_url = redis_server.url
        port = free_port()
        env = _env(redis_url, graph.url, private_pem)
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=ROOT,
                               env={**env, "PORT": str(port), "WEB_CONCURRENCY": "2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            def healthy():
                try:
                    return requests.get(f"{base}/health", timeout=1).status_code == 200
                except requests.ConnectionError:
                    return False

            wait_for(healthy, timeout=30, what="gunicorn")
            ack = ack_latency(base, rate, seconds)
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
        try:
            thru = throughput(env, graph, ack["statuses"].get(200, 0), worker_count, tmp)
            ceiling = rq_ceiling(env, redis_url, ack["statuses"].get(200, 0), worker_count)
        finally:
            redis_server.__exit__(None, None, None)
    # Other processes on the machine change both figures: say how busy it was.
    result = {"webhook_ack": ack, "confirmations": thru, "rq_noop_ceiling": ceiling, "cpus": os.cpu_count(),
              "load_average_1m": round(os.getloadavg()[0], 2)}
    print(f"webhook ack   {ack['requests']} requests at {ack['achieved_rate']}/s (target {rate}/s): "
          f"p50 {ack['p50_ms']} ms, p99 {ack['p99_ms']} ms, max {ack['max_ms']} ms "
          f"(Meta: median <= 250 ms; aim p99 <= 20 ms)  statuses {ack['statuses']}")
    print(f"confirmations {thru['messages']} via {thru['workers']} workers in {thru['seconds']} s: "
          f"{thru['messages_per_s']} messages/s (floor: 80/s per number) on {os.cpu_count()} CPUs, "
          f"load average {result['load_average_1m']}")
    print(f"rq ceiling    {ceiling['jobs']} no-op jobs via the same workers: {ceiling['jobs_per_s']} jobs/s "
          f"(fork per job + RQ's Redis bookkeeping, before any work)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
