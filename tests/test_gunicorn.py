"""The real gunicorn, from gunicorn.conf.py, spoken to over loopback."""
from __future__ import annotations

import subprocess


from conftest import APP_SECRET, ROOT, free_port, project_env, served_settings, venv_bin
from devtools.simulator import FlowClient
from procs import Gunicorn


def start_gunicorn(env: dict) -> subprocess.Popen:
    return subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_gunicorn_serves_the_member_flow_and_stops_cleanly(redis_url, keypair):
    server = Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=2,
                      FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"),  # Heroku's one-line form
                      WHATSAPP_APP_SECRET=APP_SECRET, **served_settings())
    with server:
        assert server.health == {"status": "ok", "redis": "ok"}
        client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        assert client.ping().body == {"data": {"status": "active"}}
        assert client.init("tok-g").screen == "MEMBER_LOOKUP"
        assert client.exchange("tok-g", "MEMBER_LOOKUP", {"member_id": "MEM123"}).screen == "CONFIRM"
        done = client.exchange("tok-g", "CONFIRM", {"member_id": "MEM123"})
        assert done.data["extension_message_response"]["params"]["flow_token"] == "tok-g"
        assert client.exchange("tok-g", "CONFIRM", {"member_id": "MEM123"}).status == 427
    assert server.proc.returncode == 0, server.output
    assert "Traceback" not in server.output


def test_production_refuses_to_start_without_a_key(redis_url):
    env = project_env(PORT=free_port(), APP_ENV="production", REDIS_URL=redis_url,
                      WHATSAPP_APP_SECRET=APP_SECRET)
    proc = start_gunicorn(env)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "no private key" in out


def test_production_refuses_to_start_without_an_app_secret(redis_url, keypair):
    env = project_env(PORT=free_port(), APP_ENV="production", REDIS_URL=redis_url,
                      FLOW_PRIVATE_KEY=keypair[0])
    proc = start_gunicorn(env)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "WHATSAPP_APP_SECRET is not set" in out


class _HeldAPI:
    """A member API that holds every call until ``want`` are in flight at once (or ``hold`` s
    pass), then answers them all: it counts how many lookups one dyno has waiting together."""

    def __init__(self, want: int, hold: float = 8.0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.in_flight = self.most = 0
        self.lock, self.enough = threading.Lock(), threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with api.lock:
                    api.in_flight += 1
                    api.most = max(api.most, api.in_flight)
                    if api.in_flight >= want:
                        api.enough.set()
                api.enough.wait(hold)
                with api.lock:
                    api.in_flight -= 1
                body = b'{"name": "Ana Silva", "tier": "Gold", "status": "active"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/members"

    def close(self):
        self.enough.set()
        self.server.shutdown()
        self.server.server_close()


def test_the_shipped_defaults_wait_on_many_slow_lookups_at_once(redis_url, keypair):
    """A business API answers in hundreds of ms, so a dyno's throughput is the lookups it can
    have waiting at once over that latency. 2 processes × 4 threads held 8: at 200 ms that is
    40 req/s and a p90 of seconds for a campaign's 200 users (docs/benchmarks.md). The shipped
    defaults must hold at least 100 (every request here waits until that many are waiting)."""
    from concurrent.futures import ThreadPoolExecutor

    want = 100
    api = _HeldAPI(want)
    server = Gunicorn(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
                      WHATSAPP_APP_SECRET=APP_SECRET, MEMBER_API_URL=api.url, MEMBER_API_TIMEOUT="9",
                      FLOW_DEADLINE_SECONDS="8", **served_settings())
    try:
        with server:
            def one(i):
                client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET, timeout=30)
                return client.exchange(f"tok-many-{i}", "MEMBER_LOOKUP", {"member_id": f"M{i:04d}"}).screen

            with ThreadPoolExecutor(want + 20) as pool:
                screens = list(pool.map(one, range(want + 20)))
    finally:
        api.close()
    assert api.most >= want, f"only {api.most} lookups were waiting at once"
    assert screens.count("CONFIRM") == want + 20, screens
