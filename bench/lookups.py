"""Lookup benchmark: what a cached lookup costs, and what a hanging lookup API costs.

    python -m bench.lookups [--iterations 3000] [--deadline 1.0] [--requests 100]

1. Server-side p50 of a data_exchange whose lookup is a cache hit, minus the p50 of the same
   exchange with no lookup (same Flow JSON, same validation, same session bookkeeping), timed
   around ``Engine.handle`` in-process. Bound: ≤ 1 ms.
2. End-to-end p99 (simulator → HTTP on loopback → decrypt → handler → encrypt → back) while the
   lookup API hangs and its own timeout is longer than the deadline, breaker disabled, every ID
   new so nothing is cached. Bound: ≤ deadline + 100 ms.

Self-contained: starts its own redis-server, a hanging business API and the app on loopback.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Response  # noqa: E402

from app import create_app  # noqa: E402
from flows import keys  # noqa: E402
from examples import member_check  # noqa: E402
from flows.protocol import FlowRequest, Screen  # noqa: E402
from bench.common import RedisServer  # noqa: E402
from flows.registry import Flow  # noqa: E402
from devtools.simulator import FlowClient  # noqa: E402
from validation.forms import Field, Form  # noqa: E402

SECRET = "bench-secret"


class Served:
    """A WSGI app on a loopback port in a thread."""

    def __init__(self, wsgi):
        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()


class BusinessAPI:
    """Members by ID; ``hang`` makes every call wait until released."""

    def __init__(self):
        self.hang = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        if self.hang.is_set():
            self.release.wait(30)
        member_id = environ["PATH_INFO"].rsplit("/", 1)[-1]
        if member_id in ("MEM123", "VIP999"):
            body = '{"name": "Ana Silva", "tier": "Gold", "status": "active"}'
            return Response(body, 200, mimetype="application/json")(environ, start_response)
        return Response('{"error": "not found"}', 404, mimetype="application/json")(environ, start_response)


def no_lookup_twin() -> Flow:
    """member_check's first screen with the same validation minus the lookup."""
    twin = Flow("bench_no_lookup", member_check.flow.json_path)
    form = Form(*[Field(f.name, *f.checks, normalise=f.normalise, echo=f.echo)
                  for f in member_check.LOOKUP.fields])

    @twin.on_exchange("MEMBER_LOOKUP")
    def lookup(ctx):
        result = form.check(ctx)
        if not result.ok:
            return result.screen("MEMBER_LOOKUP")
        ctx.carry(member_id=result.values["member_id"])
        return Screen("CONFIRM", {"member_id": result.values["member_id"], "member_name": "Ana Silva",
                                  "tier": "Gold"})
    return twin


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def cached_overhead(app, iterations: int) -> tuple[float, float]:
    engine, flows = app.extensions["engine"], app.extensions["flows"]
    with_lookup, without = flows.get("member_check"), flows.get("bench_no_lookup")
    req = FlowRequest(action="data_exchange", screen="MEMBER_LOOKUP", data={"member_id": "MEM123"},
                      flow_token="bench-token")
    assert engine.handle(with_lookup, req).screen == "CONFIRM"  # warms the cache
    timings = {"lookup": [], "none": []}
    for _ in range(iterations):  # interleaved, so drift hits both sides alike
        for name, flow in (("lookup", with_lookup), ("none", without)):
            started = time.perf_counter()
            outcome = engine.handle(flow, req)
            timings[name].append(time.perf_counter() - started)
            assert outcome.screen == "CONFIRM"
    return statistics.median(timings["lookup"]) * 1000, statistics.median(timings["none"]) * 1000


def hanging_p99(url: str, public_pem: str, api: BusinessAPI, requests_n: int, concurrency: int):
    api.hang.set()

    def one(i):
        client = FlowClient(f"{url}/flows/member_check", public_pem, SECRET, timeout=15)
        reply = client.exchange(f"bench-hang-{i}", "MEMBER_LOOKUP", {"member_id": f"NEW{i:05d}"})
        assert reply.status == 200 and "error_message" in reply.data, reply.body
        return reply.latency

    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(requests_n)))
    api.release.set()
    return pct(latencies, 50) * 1000, pct(latencies, 99) * 1000, max(latencies) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per request drowns the figures

    workdir = tempfile.mkdtemp(prefix="bench-lookups-")
    redis_server = RedisServer(Path(workdir)).__enter__()
    redis_url = redis_server.url
    api = BusinessAPI()
    business = Served(api)
    private_pem, public_pem = keys.generate()
    try:
        app = create_app({
            "APP_ENV": "production", "REDIS_URL": redis_url, "INSTANCE_DIR": workdir,
            "FLOW_PRIVATE_KEY": private_pem, "WHATSAPP_APP_SECRET": SECRET, "LOG_LEVEL": "ERROR",
            "SECRET_KEY": "bench-secret-key", "FOLLOWUP_CHANNEL": "console", "DEMO_FLOWS": True,
            "LOOKUP_BASE_URL": "demo://api/demo-api",  # the flows the bench does not time
            "MEMBER_API_URL": f"{business.url}/members", "FLOW_DEADLINE_SECONDS": args.deadline,
            # The API's own timeout is longer than the deadline and the breaker never opens, so
            # every request really waits on the hanging API: the deadline alone must cut it.
            "MEMBER_API_TIMEOUT": args.deadline * 10, "LOOKUP_BREAKER_FAILURES": 10**9,
        })
        app.extensions["flows"].add(no_lookup_twin())
        with_ms, without_ms = cached_overhead(app, args.iterations)
        print(f"cached lookup, server-side p50: {with_ms:.3f} ms with lookup, {without_ms:.3f} ms without "
              f"→ overhead {with_ms - without_ms:.3f} ms (bound ≤ 1 ms) over {args.iterations} runs each")
        web = Served(app)
        try:
            p50, p99, worst = hanging_p99(web.url, public_pem, api, args.requests, args.concurrency)
        finally:
            web.stop()
        bound = args.deadline * 1000 + 100
        print(f"lookup API hanging, end-to-end: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms "
              f"(bound ≤ deadline + 100 ms = {bound:.0f} ms) over {args.requests} requests, "
              f"{args.concurrency} concurrent")
        ok = (with_ms - without_ms) <= 1.0 and p99 <= bound
        print("within bounds" if ok else "OUT OF BOUNDS")
        return 0 if ok else 1
    finally:
        api.release.set()
        business.stop()
        redis_server.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
