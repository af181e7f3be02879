"""The confirmation throughput with the SQL records (issue 20) against the same benchmark without
them, in one run: ``bench.webhooks``' ack + drain phases, alternately on this tree and on the last
commit before the records store (exported with ``git archive``), on the same machine, the median
of ``BENCH_ROUNDS`` rounds each.

    python -m bench.records   (BENCH_RECORDS=sqlite|postgres, BENCH_BASELINE=<git ref>, BENCH_ROUNDS,
                               and bench.webhooks' BENCH_RATE, BENCH_SECONDS, BENCH_DYNOS,
                               WORKER_PROCESSES, BENCH_GRAPH_LATENCY_MS)

With the records, each completion job inserts its submission (``ON CONFLICT DO NOTHING``) and
updates its correlation, reads the consent ledger before the confirmation and logs the message it
sent. ``postgres`` runs a PostgreSQL cluster of its own (tests/pg.py: initdb in a temporary folder,
a unix socket, never the machine's server), a fresh database per round. Aim: no more than 15 %
slower than the baseline, and at least 80 messages/s (Meta's default per number).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import RedisServer, free_port, wait_for
from bench.webhooks import FLOOR, ROOT, Queues, Workers, _env, drain, post_webhooks
from flows import keys
from standins.graph import GraphStandIn


def baseline_ref() -> str:
    """The parent of the commit that added the records store (what "today" was before it)."""
    added = subprocess.run(["git", "log", "--format=%H", "--diff-filter=A", "-1", "--",
                            "records/__init__.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return f"{added}^" if added else "HEAD"


def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def one_round(root: Path, database_url: str | None, rate: float, seconds: float, dynos: int, per_dyno: int,
              latency: float, private_pem: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp, GraphStandIn() as graph:
        if latency:
            graph.chaos(seed=0, retryable=0.0, permanent=0.0, latency=(latency, latency))
        redis_server = RedisServer(Path(tmp)).__enter__()
        env = _env(redis_server.url, graph.url, private_pem, WORKER_PROCESSES=per_dyno, PYTHONPATH=str(root))
        if database_url:
            env["DATABASE_URL"] = database_url
        else:
            env.pop("DATABASE_URL", None)
        port = free_port()
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=root,
                               env={**env, "PORT": str(port), "WEB_CONCURRENCY": "2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers = None
        base = f"http://127.0.0.1:{port}"
        try:
            def healthy():
                try:
                    return requests.get(f"{base}/health", timeout=1).status_code == 200
                except requests.RequestException:  # not up yet, or too busy to answer in 1 s
                    return False

            wait_for(healthy, timeout=60, message="gunicorn")
            ack, _ = post_webhooks(base, rate, seconds, "rec", "1555")
            workers = Workers(env, dynos, tmp, root=root)
            result = drain(graph, Queues(redis_server.url), ack["statuses"].get(200, 0), dynos * per_dyno,
                           workers)
            result["ack_p99_ms"] = ack["p99_ms"]
            return result
        finally:
            if workers is not None:
                workers.stop()
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
            redis_server.__exit__(None, None, None)


def main() -> dict:
    import config
    from records import Records

    backend = os.environ.get("BENCH_RECORDS", "sqlite")
    ref = os.environ.get("BENCH_BASELINE") or baseline_ref()
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    rate = float(os.environ.get("BENCH_RATE", "200"))
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    dynos = int(os.environ.get("BENCH_DYNOS", "1"))
    per_dyno = int(os.environ.get("WORKER_PROCESSES") or config.defaults()["WORKER_PROCESSES"])
    latency = float(os.environ.get("BENCH_GRAPH_LATENCY_MS", "0")) / 1000
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    private_pem, _ = keys.generate()
    cluster = None
    if backend == "postgres":
        from pg import PostgresCluster, binaries

        cluster = PostgresCluster(binaries())
        cluster.start()
    figures: dict[str, list[dict]] = {"without": [], "with": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = export(ref, Path(tmp))
            for n in range(rounds):
                # Alternate which goes first: the machine's load drifts within a run.
                for variant in (("without", "with") if n % 2 == 0 else ("with", "without")):
                    if variant == "without":
                        figures[variant].append(one_round(baseline, None, rate, seconds, dynos, per_dyno,
                                                          latency, private_pem))
                        continue
                    url = (cluster.create_database() if cluster else
                           f"sqlite:///{tempfile.mkdtemp(prefix='bench-records-')}/records.sqlite3")
                    Records.open(url).upgrade()  # the release phase's migration
                    figures[variant].append(one_round(ROOT, url, rate, seconds, dynos, per_dyno, latency,
                                                      private_pem))
                    time.sleep(1)
    finally:
        if cluster is not None:
            cluster.destroy()
    median = {k: statistics.median(r["messages_per_s"] for r in v) for k, v in figures.items()}
    ratio = median["with"] / median["without"]
    result = {"backend": backend, "baseline": ref, "rounds": rounds, "workers": dynos * per_dyno,
              "graph_latency_ms": latency * 1000, "messages_per_s": median, "ratio": round(ratio, 3),
              "each": {k: [r["messages_per_s"] for r in v] for k, v in figures.items()},
              "failed_jobs": {k: sum(r["failed_jobs"] for r in v) for k, v in figures.items()},
              "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    print(f"records       {backend}: {median['with']} messages/s with the SQL writes, "
          f"{median['without']} without "
          f"(baseline {ref[:12]}), median of {rounds} rounds, {dynos * per_dyno} worker processes: "
          f"{ratio:.2f}x ({(1 - ratio) * 100:+.1f} % slower; aim <= 15 %), {median['with'] / FLOOR:.2f}x the "
          f"floor of {FLOOR:.0f}/s; load average {result['load_average_1m']}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
