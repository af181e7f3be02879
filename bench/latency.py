"""The endpoint when the business API is slow: every lookup a miss answered in 200 ms.

    .venv/bin/python -m bench.latency [--users 200] [--api-ms 200] [--rounds 2] [--duration 6]
                                      [--models gthread:64,gthread:4,gevent:1000]

(`make bench` runs it at ``--api-ms 0`` and ``200`` with the shipped model.)

member_check's MEMBER_LOOKUP ``data_exchange`` with a valid ID, pre-encrypted and signed, goes to
Flowgate under gunicorn (gunicorn.conf.py, 2 workers, as the Procfile runs it) from ``--users``
concurrent keep-alive connections, closed loop. The member API is a loopback stand-in (an asyncio
server in its own process) that answers every call ``--api-ms`` later, as a business's API does.

Two runs per model, interleaved round by round:
- **miss**: every request carries an ID no request before it carried, so each one waits on the
  API (the stand-in counts its calls: the "API calls/req" column must read 1.00);
- **cached**: 64 IDs, looked up in the warm-up, so every measured request is a cache hit: what
  the same dyno does when the API is not the limit. Target: miss ≥ 0.8 × cached req/s, p90 ≤ 1 s.

A model is ``gthread:THREADS`` or ``gevent:CONNECTIONS`` (gunicorn's worker class and its
per-worker concurrency; gevent is for comparison only, and needs ``pip install gevent``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from bench.common import (CORES, Gunicorn, RedisServer, build_post, free_port, median, percentile,
                          print_table, process_cpu, project_env, run_load, wait_for)
from flows import crypto, keys
from flows.signing import HEADER, sign

APP_SECRET = "bench-app-secret"
PATH = "/flows/member_check"
MEMBER = b'{"name": "Ana Silva", "tier": "Gold", "status": "active"}'


# --- the business API: answers every GET after a fixed latency --------------------------------


def _serve_api(port: int, latency: float, calls, ready) -> None:
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")  # GETs: no body
                if not head:
                    return
                await asyncio.sleep(latency)
                with calls.get_lock():
                    calls.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(MEMBER), MEMBER))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class SlowAPI:
    """The member API stand-in in its own process (its CPU is not the server's)."""

    def __init__(self, latency_ms: float):
        self.port, self.latency = free_port(), latency_ms / 1000
        ctx = multiprocessing.get_context("fork")
        self.calls, self._ready = ctx.Value("q", 0), ctx.Event()
        self.proc = ctx.Process(target=_serve_api, args=(self.port, self.latency, self.calls, self._ready),
                                daemon=True)

    def __enter__(self):
        self.proc.start()
        wait_for(self._ready.is_set, message="member API stand-in")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join()


# --- requests -----------------------------------------------------------------------------------


def sealed(public_key, tag: str, count: int) -> list[bytes]:
    """``count`` exchanges, each with its own ID, flow token, AES key and IV."""
    pool = []
    for i in range(count):
        payload = {"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP",
                   "data": {"member_id": f"{tag}{i:06d}"}, "flow_token": f"bench-{tag}-{i}"}
        body = json.dumps(crypto.encrypt_request(payload, public_key).body).encode()
        pool.append(build_post(PATH, body, {HEADER: sign(APP_SECRET, body)}))
    return pool


def gunicorn_conf(tmp: Path, model: str) -> tuple[str, dict]:
    """gunicorn.conf.py with the model's worker class and concurrency."""
    kind, _, size = model.partition(":")
    size = int(size or 0)
    path = tmp / f"{kind}-{size}.conf.py"
    lines = ['exec(open("gunicorn.conf.py").read())', f'worker_class = "{kind}"']
    if kind == "gevent":
        lines.append(f"worker_connections = {size or 1000}")
    path.write_text("\n".join(lines) + "\n")
    return str(path), ({"GUNICORN_THREADS": size} if kind == "gthread" and size else {})


def one_run(server: Gunicorn, redis: RedisServer, api: SlowAPI, pool, users: int, args, distinct: bool):
    procs = 2
    samples = {}

    def window(start, end):
        def sample():
            with open("/proc/stat") as f:
                parts = [int(x) for x in f.readline().split()[1:]]
            return (server.cpu_seconds(), process_cpu(redis.proc.pid), api.calls.value, sum(parts),
                    parts[3] + parts[4])
        time.sleep(max(0.0, start - time.monotonic()))
        first = sample()
        time.sleep(max(0.0, end - time.monotonic()))
        last = sample()
        samples.update(server=(last[0] - first[0]) / (end - start), calls=last[2] - first[2],
                       machine=CORES * (1 - (last[4] - first[4]) / max(1, last[3] - first[3])))

    failed_before = _failed_lookups(server)
    result = run_load(server.port, pool, processes=procs, conns=users // procs, warmup=args.warmup,
                      duration=args.duration, on_window=window, distinct=distinct)
    lat = result.latencies
    return {"rps": result.rps, "p50": percentile(lat, 50) * 1000, "p90": percentile(lat, 90) * 1000,
            "p99": percentile(lat, 99) * 1000,
            "errors": sum(n for s, n in result.statuses.items() if s != 200),
            "failed_lookups": _failed_lookups(server) - failed_before,
            "calls_per_req": samples["calls"] / result.completed if result.completed else float("nan"),
            "server_cores": samples["server"], "machine_cores": samples["machine"],
            "server_us": samples["server"] / result.rps * 1e6 if result.rps else float("nan")}


def _failed_lookups(server: Gunicorn) -> int:
    """Lookups that timed out or failed (each logs one line): a miss run with any is suspect, and
    five in a row open the breaker, after which answers are fast and wrong."""
    server.log.flush()
    lines = [line for line in server.log_path.read_text(errors="replace").splitlines()
             if "call failed" in line]
    if lines and os.environ.get("BENCH_VERBOSE"):
        print("    e.g. " + "\n    e.g. ".join(sorted({line.split("call failed")[1] for line in lines})[:5]))
    return len(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=200, help="concurrent keep-alive connections")
    p.add_argument("--api-ms", type=float, default=200.0, help="the member API's answer time")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: production's)")
    p.add_argument("--models", default=None,
                   help="comma-separated gthread:THREADS / gevent:CONNECTIONS (default: the shipped "
                        "model only)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    import config

    args = parse_args(argv)
    shipped = config.server(project_env(WEB_CONCURRENCY=args.workers))
    workers = shipped["workers"]
    models = (args.models or f"gthread:{shipped['threads']}").split(",")
    private_pem, public_pem = keys.generate()
    public_key = keys.load_public_key(public_pem)
    print(f"machine: {CORES} cores, load average {os.getloadavg()[0]:.2f}; gunicorn: {workers} workers; "
          f"member API answers in {args.api_ms:.0f} ms; {args.users} users, closed loop; "
          f"{args.rounds} interleaved rounds of {args.warmup:.0f}+{args.duration:.0f} s")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="flowgate-latency-") as tmp, RedisServer(Path(tmp)) as redis, \
            SlowAPI(args.api_ms) as api:
        servers = {}
        try:
            for model in models:
                conf, extra = gunicorn_conf(Path(tmp), model)
                env = project_env(APP_ENV="production", FLOW_PRIVATE_KEY=keys.one_line(private_pem),
                                  WHATSAPP_APP_SECRET=APP_SECRET, REDIS_URL=redis.url, PORT=free_port(),
                                  WEB_CONCURRENCY=workers, SECRET_KEY="bench-secret-key",
                                  FOLLOWUP_CHANNEL="console", DEMO_FLOWS="true",
                                  LOOKUP_BASE_URL="demo://api/demo-api",
                                  MEMBER_API_URL=f"http://127.0.0.1:{api.port}/members", **extra)
                servers[model] = Gunicorn(env, Path(tmp) / f"{model}.log", name=model,
                                          config=conf).__enter__()
            cached = sealed(public_key, "C", 64)
            # Enough distinct requests for the fastest run: 4 × what the users could do at once
            # per API latency over the whole run, with room to spare.
            per_run = min(8000,
                          int(args.users / (args.api_ms / 1000 or 0.05) * (args.warmup + args.duration + 2)))
            for rnd in range(args.rounds):
                for model, server in servers.items():
                    for kind in ("miss", "cached"):
                        tag = f"M{sum(map(len, results.values()))}-"  # new IDs every run
                        pool = sealed(public_key, tag, per_run) if kind == "miss" else cached
                        run = one_run(server, redis, api, pool, args.users, args, distinct=(kind == "miss"))
                        results.setdefault((model, kind), []).append(run)
                        print(f"  API {args.api_ms:.0f} ms  round {rnd + 1} {model:14s} {kind:6s} "
                              f"{run['rps']:6.0f} req/s  p50 {run['p50']:6.0f} ms  p90 {run['p90']:6.0f} ms  "
                              f"p99 {run['p99']:6.0f} ms  API calls/req {run['calls_per_req']:.2f}  "
                              f"failed lookups {run['failed_lookups']}  errors {run['errors']}  "
                              f"load {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)
    report(results, args)
    return results


def report(results, args) -> None:
    rows = []
    by = {}
    for (model, kind), runs in results.items():
        m = {key: median([r[key] for r in runs]) for key in runs[0]}
        by[(model, kind)] = m
        rows.append([model, kind, m["rps"], m["p50"], m["p90"], m["p99"], m["calls_per_req"],
                     sum(r["failed_lookups"] for r in runs), sum(r["errors"] for r in runs), m["server_us"],
                     m["server_cores"], m["machine_cores"]])
    print_table(f"Member API at {args.api_ms:.0f} ms, {args.users} users (medians of {args.rounds} rounds; "
                f"load average now {os.getloadavg()[0]:.2f})",
                ["model", "lookups", "req/s", "p50 ms", "p90 ms", "p99 ms", "API calls/req", "failed lookups",
                 "errors", "server CPU µs/req", "server cores", "machine cores"], rows)
    for model in dict.fromkeys(m for m, _ in by):
        miss, hit = by[(model, "miss")], by[(model, "cached")]
        ratio = miss["rps"] / hit["rps"] if hit["rps"] else float("nan")
        met = ratio >= 0.8 and miss["p90"] <= 1000
        print(f"API {args.api_ms:.0f} ms, {args.users} users, {model}: miss/cached = {ratio:.2f} "
              f"(target ≥ 0.8), miss p90 {miss['p90']:.0f} ms (target ≤ 1000) → "
              f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
