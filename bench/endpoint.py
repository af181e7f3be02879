"""The encrypted Flow endpoint under gunicorn: CPU per request against pywa and the floor.

    .venv/bin/python -m bench.endpoint [--rounds 3] [--duration 5] [--no-pywa]

The same pre-encrypted, signed requests (``ping`` and member_check's MEMBER_LOOKUP
``data_exchange`` with a valid ID, each a real Meta-shaped request) go to Flowgate, to a
minimal pywa endpoint (bench/pywa_app.py) and to the floor (bench/floor_app.py: a bare WSGI
callable that decrypts and answers, nothing else), all under gunicorn.conf.py with the same
settings, in interleaved runs. The business API answers at once here (0 ms: the demo backend
in-process, every lookup a cache hit after the first); bench/latency.py is the same endpoint with
the API at 200 ms.

What is reported: server CPU per request (gunicorn master and workers, from /proc), and its
ratios to pywa's and to the floor's, each the median of the per-round ratios (round i of every
server runs back to back, so a neighbour's burst hits all of them alike). Targets (issue 16):
Flowgate ≥ 1.0× pywa in req/s and in CPU per request, ping ≥ 1.1×; Flowgate's CPU per request
÷ the floor's ≤ 1.3 for exchange, ≤ 1.1 for ping. The RSA share column is how much of the
server's CPU per request the key unwrap itself is (one RSA-2048 OAEP decryption on one core of
this machine, measured seconds before each run).
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import (CORES, Gunicorn, RedisServer, build_post, free_port, median, percentile,
                          print_table, process_cpu, project_env, run_load)
from flows import crypto, keys
from flows.signing import HEADER, sign

APP_SECRET = "bench-app-secret"
PATH = "/flows/member_check"
VALID_ID = "MEM123"
POOL = 64  # distinct requests per kind: distinct AES keys, IVs and flow tokens


def rsa_rate(private_key, public_key, seconds: float = 0.6) -> float:
    """RSA-2048 OAEP (SHA-256) decryptions per CPU second of this process, now: CPU time, not wall
    time, so that neighbours taking the core do not make the unwrap look slower than it is."""
    wrapped = public_key.encrypt(os.urandom(16), crypto.OAEP)
    private_key.decrypt(wrapped, crypto.OAEP)
    count, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        for _ in range(20):
            private_key.decrypt(wrapped, crypto.OAEP)
        count += 20
    return count / elapsed


def sealed_pool(kind: str, public_key) -> list[tuple[bytes, crypto.SealedRequest]]:
    pool = []
    for i in range(POOL):
        if kind == "ping":
            payload = {"version": "3.0", "action": "ping"}
        else:
            payload = {"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP",
                       "data": {"member_id": VALID_ID}, "flow_token": f"bench-token-{i:03d}"}
        sealed = crypto.encrypt_request(payload, public_key)
        body = json.dumps(sealed.body).encode()
        pool.append((build_post(PATH, body, {HEADER: sign(APP_SECRET, body)}), sealed))
    return pool


def check_replies(port: int, pool, kind: str, name: str) -> None:
    """Before timing anything: the server answers this kind correctly (else the figures lie)."""
    raw, sealed = pool[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    conn.request("POST", PATH, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"{name} answered {kind} with {resp.status}: {text[:200]}")
    reply = crypto.decrypt_reply(text, sealed.aes_key, sealed.iv)
    ok = (reply == {"data": {"status": "active"}}) if kind == "ping" else (
        reply.get("screen") == "CONFIRM" and reply.get("data", {}).get("member_id") == VALID_ID)
    if not ok:
        raise SystemExit(f"{name} answered {kind} with an unexpected screen: {reply}")


class Window:
    """CPU of the server, its Redis and the whole machine over the load generator's window."""

    def __init__(self, server: Gunicorn, redis: RedisServer):
        self.server, self.redis = server, redis

    def _sample(self):
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        return (self.server.cpu_seconds(), process_cpu(self.redis.proc.pid), sum(parts), parts[3] + parts[4])

    def __call__(self, start: float, end: float):
        time.sleep(max(0.0, start - time.monotonic()))
        first = self._sample()
        time.sleep(max(0.0, end - time.monotonic()))
        last = self._sample()
        duration = end - start
        busy = CORES * (1 - (last[3] - first[3]) / max(1, last[2] - first[2]))
        return {"server": (last[0] - first[0]) / duration, "redis": (last[1] - first[1]) / duration,
                "machine": busy}


def one_run(target: Gunicorn, redis: RedisServer, pool, args, single: float) -> dict:
    result = run_load(target.port, [raw for raw, _ in pool], processes=args.processes, conns=args.conns,
                      warmup=args.warmup, duration=args.duration, on_window=Window(target, redis))
    lat = result.latencies
    cpu = result.window
    errors = sum(n for status, n in result.statuses.items() if status != 200)
    server_us = cpu["server"] / result.rps * 1e6 if result.rps else float("nan")
    client = result.client_cpu / result.duration
    return {
        "rps": result.rps, "p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000,
        "errors": errors, "reconnects": result.reconnects,
        "server_cores": cpu["server"], "redis_cores": cpu["redis"], "client_cores": client,
        "other_cores": max(0.0, cpu["machine"] - cpu["server"] - cpu["redis"] - client),
        "refused": result.refused, "server_us": server_us,
        "rsa_share": (1e6 / single) / server_us if result.rps else float("nan"),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved A/B rounds per request kind")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    p.add_argument("--processes", type=int, default=2, help="load generator processes")
    p.add_argument("--conns", type=int, default=4, help="keep-alive connections per process")
    p.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: production's)")
    p.add_argument("--threads", type=int, default=None, help="GUNICORN_THREADS (default: production's)")
    p.add_argument("--kinds", default="ping,exchange", help="request kinds, comma-separated")
    p.add_argument("--no-pywa", action="store_true", help="Flowgate only")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the floor endpoint (bench/floor_app.py: decrypt and answer, nothing else)")
    p.add_argument("--no-access-log", action="store_true",
                   help="experiment: gunicorn.conf.py with accesslog = None, to price the access log")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    import config

    args = parse_args(argv)
    if not args.no_pywa and importlib.util.find_spec("pywa") is None:
        print("pywa is not installed (pip install -r requirements-bench.txt): Flowgate only")
        args.no_pywa = True
    server_cfg = config.server(project_env(WEB_CONCURRENCY=args.workers, GUNICORN_THREADS=args.threads))
    workers, threads = server_cfg["workers"], server_cfg["threads"]
    private_pem, public_pem = keys.generate()
    private_key, public_key = keys.load_private_key(private_pem), keys.load_public_key(public_pem)
    pools = {kind: sealed_pool(kind, public_key) for kind in args.kinds.split(",")}
    print(f"machine: {CORES} cores; gunicorn: {workers} workers x {threads} threads (gthread); "
          f"load: {args.processes} processes x {args.conns} keep-alive connections, closed loop; "
          f"{args.rounds} interleaved rounds of {args.warmup:.0f}+{args.duration:.0f} s per kind; "
          f"business API 0 ms (in-process); load average {os.getloadavg()[0]:.2f}")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="flowgate-bench-") as tmp, RedisServer(Path(tmp)) as redis:
        def env():
            return project_env(APP_ENV="production", FLOW_PRIVATE_KEY=keys.one_line(private_pem),
                               WHATSAPP_APP_SECRET=APP_SECRET, REDIS_URL=redis.url, PORT=free_port(),
                               WEB_CONCURRENCY=workers, GUNICORN_THREADS=threads,
                               SECRET_KEY="bench-secret-key", FOLLOWUP_CHANNEL="console", DEMO_FLOWS="true",
                               # member_check's lookup: the demo backend in-process (a cache hit
                               # after the first request either way)
                               LOOKUP_BASE_URL="demo://api/demo-api")

        conf = "gunicorn.conf.py"
        if args.no_access_log:
            conf = str(Path(tmp) / "no_access_log.conf.py")
            Path(conf).write_text('exec(open("gunicorn.conf.py").read())\naccesslog = None\n')
        targets = [Gunicorn(env(), Path(tmp) / "flowgate.log", name="flowgate", config=conf)]
        if not args.no_pywa:
            targets.append(Gunicorn(env(), Path(tmp) / "pywa.log", app="bench.pywa_app:app", name="pywa",
                                    config=conf))
        if not args.no_floor:
            targets.append(Gunicorn(env(), Path(tmp) / "floor.log", app="bench.floor_app:app", name="floor",
                                    config=conf))
        started = []
        try:
            for target in targets:  # inside the try: one that fails to start stops the others
                target.__enter__()
                started.append(target)
            for kind, pool in pools.items():
                for target in targets:
                    check_replies(target.port, pool, kind, target.name)
            for kind, pool in pools.items():
                for rnd in range(args.rounds):
                    for target in targets:  # A, B, A, B: drift on a shared machine hits both alike
                        single = rsa_rate(private_key, public_key)
                        run = one_run(target, redis, pool, args, single)
                        results.setdefault((kind, target.name), []).append(run)
                        print(f"  API 0 ms  {kind:8s} round {rnd + 1} {target.name:8s} "
                              f"{run['rps']:7.0f} req/s p50 {run['p50']:5.2f} ms p99 {run['p99']:6.2f} ms  "
                              f"server CPU {run['server_us']:5.0f} µs/req  errors {run['errors']}  "
                              f"load {os.getloadavg()[0]:.2f}", flush=True)
            rss = {t.name: t.rss_kib() for t in targets}
        finally:
            for target in started:
                target.__exit__(None, None, None)
    report(results, rss, workers)
    return results


def ratios(results) -> dict:
    """Per kind, the medians over rounds of Flowgate's req/s and CPU per request against pywa's
    and the floor's in the same round: {kind: {"rps/pywa", "cpu/pywa", "cpu/floor"}}."""
    out = {}
    for kind in dict.fromkeys(k for k, _ in results):
        ours = results.get((kind, "flowgate"), [])
        row = {}
        for other in ("pywa", "floor"):
            theirs = results.get((kind, other))
            if not theirs:
                continue
            pairs = list(zip(ours, theirs))
            row[f"rps/{other}"] = median([a["rps"] / b["rps"] for a, b in pairs])
            # pywa's CPU ÷ ours: ≥ 1.0 is "at least as cheap"; ours ÷ the floor's: how far above it
            row[f"cheap/{other}"] = median([b["server_us"] / a["server_us"] for a, b in pairs])
            row[f"cpu/{other}"] = median([a["server_us"] / b["server_us"] for a, b in pairs])
        out[kind] = row
    return out


AIMS = {"ping": {"pywa": 1.1, "floor": 1.1}, "exchange": {"pywa": 1.0, "floor": 1.3}}


def report(results, rss, workers) -> None:
    rows = []
    for (kind, name), runs in results.items():
        m = {key: median([r[key] for r in runs]) for key in runs[0]}
        rows.append([kind, name, m["rps"], m["p50"], m["p99"],
                     sum(r["errors"] for r in runs), sum(r["reconnects"] for r in runs),
                     sum(r["refused"] for r in runs), m["server_us"], m["rsa_share"],
                     m["server_cores"], m["redis_cores"], m["client_cores"], m["other_cores"]])
    print_table(f"Endpoint under gunicorn, business API 0 ms (medians of {len(next(iter(results.values())))} "
                f"interleaved runs each; {workers} workers; load average now {os.getloadavg()[0]:.2f})",
                ["kind", "server", "req/s", "p50 ms", "p99 ms", "errors", "reconnects", "refused",
                 "server CPU µs/req", "RSA share of it", "server cores", "redis cores", "client cores",
                 "others' cores"], rows)
    for kind, row in ratios(results).items():
        aims = AIMS.get(kind, {})
        if "rps/pywa" in row:
            aim = aims.get("pywa", 1.0)
            met = row["rps/pywa"] >= aim and row["cheap/pywa"] >= aim
            print(f"API 0 ms {kind}: Flowgate vs pywa: req/s x{row['rps/pywa']:.2f}, CPU per request "
                  f"x{row['cheap/pywa']:.2f} (pywa's ÷ Flowgate's; aim ≥ {aim}) → "
                  f"{'met' if met else 'NOT met'}")
        if "cpu/floor" in row:
            aim = aims.get("floor", 1.3)
            print(f"API 0 ms {kind}: Flowgate's CPU per request ÷ the floor's = {row['cpu/floor']:.2f} "
                  f"(aim ≤ {aim}) → {'met' if row['cpu/floor'] <= aim else 'NOT met'}")
    for name, procs in rss.items():
        print(f"RSS after the runs, {name}: " + ", ".join(f"{kib / 1024:.0f} MiB" for kib in procs.values())
              + " (master first)")


if __name__ == "__main__":
    main()
