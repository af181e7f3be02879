"""Dashboard bench: render time with 100,000 sessions recorded, and what the metrics cost in Redis.

    python -m bench.dashboard [--sessions 100000] [--runs 20]

Starts its own redis-server on an ephemeral loopback port, records the sessions through the real
APIs (SessionStore for the sessions and their timelines, metrics.Recorder for the counters,
latency windows and the recent-session index, as the endpoint does per request), then times
GET /dashboard, /dashboard/metrics.json and /metrics server-side through Flask's test client,
and sums MEMORY USAGE over the metrics keys. The hot-path figure is one request's metric writes
against a bare PING round trip measured in the same run.
"""
from __future__ import annotations

import argparse
import base64
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.common import RedisServer  # noqa: E402
from flows import keys  # noqa: E402
from flows.sessions import TIMELINE_LENGTH, TOMBSTONE_SECONDS, SessionStore, new_token  # noqa: E402
from metrics import Metrics  # noqa: E402
from metrics.store import PREFIX  # noqa: E402

TARGET_MS = 300.0
PASSWORD = "bench-password"


def record(client: redis.Redis, sessions: int, now: float) -> float:
    """Sessions as the endpoint leaves them: visited, moved, metered. Returns seconds taken."""
    rng = random.Random(42)
    store = SessionStore(client, lifetime=3 * 24 * 3600)
    started = time.perf_counter()
    chunk = 1000
    for first in range(0, sessions, chunk):
        at = now - rng.random() * 1700  # inside the 30-minute window
        pipe = client.pipeline(transaction=False)
        with Metrics(client).batch(now=at) as m:
            for _ in range(min(chunk, sessions - first)):
                token = new_token()
                # SessionStore.visit, pipelined: the same script and arguments the engine uses.
                for screen in ("MEMBER_LOOKUP", "CONFIRM"):
                    store._visit(keys=store._keys(token), client=pipe,
                                 args=[token, "member_check", screen, f"{at:.3f}", store.lifetime, 0,
                                       TOMBSTONE_SECONDS, TIMELINE_LENGTH])
                m.session(token).count("member_check", "opened").count("member_check", "screen",
                                                                        label="MEMBER_LOOKUP")
                m.endpoint("member_check", "INIT", rng.lognormvariate(-3.5, 0.5), 200)
                if rng.random() < 0.3:
                    m.validation_failure("member_check", "member_id", "not_found")
                    m.endpoint("member_check", "data_exchange", rng.lognormvariate(-3.2, 0.6), 200)
                m.count("member_check", "screen", label="CONFIRM")
                m.endpoint("member_check", "data_exchange", rng.lognormvariate(-3.2, 0.6), 200)
                if rng.random() < 0.8:
                    m.count("member_check", "completed")
                    m.endpoint("member_check", "data_exchange", rng.lognormvariate(-3.0, 0.7), 200)
        pipe.execute()
    return time.perf_counter() - started


def memory(client: redis.Redis, pattern: str) -> tuple[int, int]:
    total, count = 0, 0
    batch = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 1000:
            total += _sizes(client, batch)
            count += len(batch)
            batch = []
    total += _sizes(client, batch)
    return total, count + len(batch)


def _sizes(client, batch) -> int:
    pipe = client.pipeline(transaction=False)
    for key in batch:
        pipe.memory_usage(key, samples=0)
    return sum(x or 0 for x in pipe.execute())


def timed(client, path: str, runs: int) -> list[float]:
    auth = {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()}
    assert client.get(path, headers=auth).status_code == 200, path  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        resp = client.get(path, headers=auth)
        samples.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200
    return samples


def hot_path(client: redis.Redis, n: int = 3000) -> tuple[float, float, float]:
    """Microseconds per request's metric writes, written through (workers, CLI) and buffered (a
    web process: metrics/buffer.py, its flushes included), vs per PING; same connection, same run."""
    started = time.perf_counter()
    for _ in range(n):
        client.ping()
    ping = (time.perf_counter() - started) / n * 1e6

    def per_request(metrics) -> float:
        started = time.perf_counter()
        for _ in range(n):
            with metrics.batch() as m:
                m.endpoint("member_check", "data_exchange", 0.03, 200)
                m.session("fg_hotpath_token").count("member_check", "screen", label="CONFIRM")
        if metrics.buffer is not None:
            metrics.buffer.stop()  # the last flush counts too
        return (time.perf_counter() - started) / n * 1e6

    through = per_request(Metrics(client))
    buffered = Metrics(client)
    buffered.buffered(seconds=1.0)
    return through, per_request(buffered), ping


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="fg-bench-")
    redis_server = RedisServer(Path(workdir)).__enter__()
    try:
        from app import create_app

        url = redis_server.url
        client = redis.Redis.from_url(url)
        private, _ = keys.generate()
        app = create_app({"APP_ENV": "production", "REDIS_URL": url, "INSTANCE_DIR": workdir,
                          "FLOW_PRIVATE_KEY": private, "WHATSAPP_APP_SECRET": "bench-secret",
                          "DASHBOARD_PASSWORD": PASSWORD, "LOG_LEVEL": "WARNING",
                          "SECRET_KEY": "bench-secret-key", "FOLLOWUP_CHANNEL": "console", "DEMO_FLOWS": True,
                          "LOOKUP_BASE_URL": "demo://api/demo-api"})
        now = time.time()
        took = record(client, args.sessions, now)
        print(f"recorded {args.sessions:,} sessions in {took:.1f} s")
        http = app.test_client()
        print(f"\n{'page':28} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
        verdict = 0
        for path in ("/dashboard", "/dashboard/metrics.json", "/metrics"):
            s = sorted(timed(http, path, args.runs))
            p90 = s[int(0.9 * (len(s) - 1))]
            print(f"{path:28} {statistics.median(s):10.1f} {p90:8.1f} {s[-1]:8.1f}")
            if path == "/dashboard" and statistics.median(s) > TARGET_MS:
                verdict = 1
        m_bytes, m_keys = memory(client, f"{PREFIX}:*")
        s_bytes, s_keys = memory(client, "fg:session:*")
        print(f"\nmetrics in Redis: {m_bytes / 1024:,.0f} KiB in {m_keys} keys "
              f"({m_bytes / args.sessions:.1f} bytes per session)")
        print("sessions + timelines (for scale, not metrics): "
              f"{s_bytes / 1024 / 1024:,.1f} MiB in {s_keys:,} keys")
        through, buffered, ping = hot_path(client)
        print(f"\nhot path: one request's metric writes {through:.0f} µs written through (one pipelined "
              f"round trip, x{through / ping:.1f} a PING of {ping:.0f} µs), {buffered:.0f} µs buffered as in "
              f"a web process (x{buffered / ping:.2f})")
        print(f"\n/dashboard median target < {TARGET_MS:.0f} ms: {'met' if verdict == 0 else 'MISSED'}")
        return verdict
    finally:
        redis_server.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
