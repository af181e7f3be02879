"""Where a request's CPU goes, without HTTP: each app called as WSGI in this process.

    .venv/bin/python -m bench.breakdown [--profile]

``--profile``: then Flowgate's exchange under cProfile, 1,000 calls, the top of the cumulative
times (docs/benchmarks.md, "Profile first").

Subtracting these from the server CPU per request that bench.endpoint measures under gunicorn
gives gunicorn's own share (HTTP parsing, gthread's poller and thread pool, the access log).
CPU time (time.process_time), not wall time, so neighbours on a shared machine matter less.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RedisServer, median, print_table
from bench.endpoint import APP_SECRET, PATH, VALID_ID
from flows import crypto, keys
from flows.signing import sign

N = 1500
ROUNDS = 3


def _environ(payload: dict, public_key) -> tuple[dict, bytes]:
    sealed = crypto.encrypt_request(payload, public_key)
    body = json.dumps(sealed.body).encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": PATH, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "HTTP_X_HUB_SIGNATURE_256": sign(APP_SECRET, body),
            "wsgi.errors": sys.stderr}, body


def _per_call_us(fn, n: int = N) -> float:
    fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


def _wsgi_call(app, environ: dict, body: bytes):
    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"{status}: the breakdown would time an error path")

    def call():
        env = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        b"".join(app(env, start_response))

    return call


def _serve_demo_api():
    import threading

    from flask import Flask
    from werkzeug.serving import make_server

    from examples import demo_api

    demo = Flask("demo_api")
    demo.register_blueprint(demo_api.bp)
    server = make_server("127.0.0.1", 0, demo, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def profile(call, n: int = 1000, top: int = 40) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    print(f"\nFlowgate's exchange under cProfile, {n} calls, by cumulative time:")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main(argv=None) -> None:
    # Its settings go through os.environ (config.load() reads nothing else); put them back after,
    # or `python -m bench` hands FOLLOWUP_CHANNEL=console to the webhooks benchmark's workers.
    saved = dict(os.environ)
    try:
        _main(argv or [])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _main(argv: list) -> None:
    private_pem, public_pem = keys.generate()
    private_key, public_key = keys.load_private_key(private_pem), keys.load_public_key(public_pem)
    with tempfile.TemporaryDirectory(prefix="flowgate-breakdown-") as tmp, RedisServer(Path(tmp)) as redis:
        # The member API the exchange looks up: the demo backend on its own loopback server, so the
        # exchange measured is the real one (a cached lookup), not the API-unreachable path.
        demo = _serve_demo_api()
        # Both apps read their settings through config.load(), as under gunicorn.
        os.environ.update(APP_ENV="production", FLOW_PRIVATE_KEY=keys.one_line(private_pem),
                          WHATSAPP_APP_SECRET=APP_SECRET, REDIS_URL=redis.url, LOG_LEVEL="WARNING",
                          SECRET_KEY="bench-secret-key", FOLLOWUP_CHANNEL="console", DEMO_FLOWS="true",
                          LOOKUP_BASE_URL=f"http://127.0.0.1:{demo.server_port}/demo-api")
        from app import create_app
        from metrics import buffer_in_this_process, flush_this_process
        apps = {"flowgate": create_app()}
        buffer_in_this_process(apps["flowgate"])  # as gunicorn.conf.py's post_fork does
        try:
            from bench import pywa_app
            apps["pywa"] = pywa_app.app
        except ModuleNotFoundError:
            print("pywa is not installed: Flowgate only")
        from bench import floor_app
        apps["floor"] = floor_app.app
        wrapped = public_key.encrypt(os.urandom(16), crypto.OAEP)
        rsa = _per_call_us(lambda: private_key.decrypt(wrapped, crypto.OAEP))
        payloads = {"ping": {"version": "3.0", "action": "ping"},
                    "exchange": {"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP",
                                 "data": {"member_id": VALID_ID}, "flow_token": "bench-breakdown"}}
        rows = [["RSA-2048 OAEP decrypt alone", "-", rsa, 1.0, "-"]]
        try:
            for kind, payload in payloads.items():
                calls = {name: _wsgi_call(app, *_environ(payload, public_key)) for name, app in apps.items()}
                # Interleaved rounds, medians: a neighbour's burst hits every app alike.
                runs = {name: [] for name in apps}
                for _ in range(ROUNDS):
                    for name, call in calls.items():
                        runs[name].append(_per_call_us(call, N // ROUNDS))
                floor = median(runs["floor"])
                for name in apps:
                    us = median(runs[name])
                    rows.append([f"{name} app, {kind}", kind, us, rsa / us, us / floor])
            if "--profile" in argv:
                profile(_wsgi_call(apps["flowgate"], *_environ(payloads["exchange"], public_key)))
        finally:  # before this Redis goes: `python -m bench` runs on in this process
            flush_this_process(apps["flowgate"])
    print_table("CPU per request inside the app (WSGI call, no HTTP server; µs of this process's CPU; "
                f"business API 0 ms, a cached lookup; medians of {ROUNDS} interleaved rounds; load average "
                f"{os.getloadavg()[0]:.2f})",
                ["what", "kind", "CPU µs/req", "RSA share", "÷ floor app"], rows)


if __name__ == "__main__":
    main(sys.argv[1:])
