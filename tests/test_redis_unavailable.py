"""Every route, over real HTTP, while Redis is stopped and while it is still loading its data set.

A route that needs Redis answers 503 with Retry-After (one app-wide handler, blueprints/errors.py,
or the dashboard's own text page); one that does not keeps working. Never a 500. The "loading"
Redis is a real redis-server replaying a dump slowly (``key-load-delay``), so every command gets
Redis's own ``-LOADING`` reply (redis-py's BusyLoadingError).
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
import redis as redis_lib
import requests

from app import create_app
from conftest import APP_SECRET, LiveServer, free_port, redis_server_binary, wait_for
from flows.signing import HEADER, sign
from devtools.simulator import FlowClient
from standins.meta_webhooks import body_of, messages_change, signed_headers, text_message

PASSWORD = "ops-pass-1"
API_TOKEN = "api-token-503"
WASENDER_SECRET = "ws-secret-503"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()}
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
# Routes that never touch Redis, and what they answer; every other route must answer 503.
WITHOUT_REDIS = {"home.index": 200, "dashboard.login": 200, "webhooks.verify": 403,
                 "endpoint.flow_endpoint": 200, "static": 404,
                 # The records live in SQL (records/): readable while Redis is away.
                 "submissions.list_submissions": 200, "submissions.get_submission": 404}
# These catch the error themselves and answer 503 in their own words, without Retry-After (Meta
# and WASender redeliver on their own schedule); every other 503 comes with one.
OWN_503 = {"webhooks.receive", "wasender_webhook.wasender_webhook", "media.media", "health.health"}


def probes(base: str, keypair) -> dict:
    """One real request per route (endpoint name → callable returning the response)."""
    wasender_body = json.dumps({"event": "messages.upsert", "data": {"messages": {
        "key": {"id": "m1", "fromMe": False, "cleanedSenderPn": "15550001234"}, "messageBody": "hi"}}})
    cloud = body_of(messages_change([text_message("hello")]))

    def get(path, **kw):
        return lambda: requests.get(base + path, timeout=10, allow_redirects=False, **kw)

    def post(path, **kw):
        return lambda: requests.post(base + path, timeout=10, allow_redirects=False, **kw)

    demo = {f"demo_api.{name}": get(f"/demo-api/{path}?key=x")
            for name, path in (("member", "members"), ("coverage", "coverage"), ("coupon", "coupons"),
                               ("inventory", "inventory"), ("calendar", "calendar"))}
    return {
        **demo,
        "static": get("/static/nothing.css"),
        "endpoint.flow_endpoint": lambda: flow_init(f"{base}/flows/member_check", keypair),
        "health.health": get("/health"),
        "home.index": get("/"),
        "dashboard.replay_dead_letter": post("/dashboard/deadletters/dl-x/replay", headers=BASIC),
        "send_api.send_flow": post("/api/flows/member_check/send", json={"to": "+15550001234"},
                                   headers=BEARER),
        "wasender_webhook.wasender_webhook": post("/webhooks/wasender", data=wasender_body,
                                                  headers={"X-Webhook-Signature": WASENDER_SECRET,
                                                           "Content-Type": "application/json"}),
        "dashboard.index": get("/dashboard", headers=BASIC),
        "dashboard.metrics_json": get("/dashboard/metrics.json", headers=BASIC),
        "dashboard.requeue": post("/dashboard/jobs/flowgate-default/j1/requeue", headers=BASIC),
        "dashboard.login": get("/dashboard/login"),
        "dashboard.logout": post("/dashboard/logout", headers=BASIC),
        "dashboard.prometheus": get("/metrics", headers=BASIC),
        "playground.index": get("/playground", headers=BASIC),
        "playground.play": get("/playground/member_check", headers=BASIC),
        "playground.act": post("/playground/member_check/action", headers=BASIC),
        "playground.back": post("/playground/member_check/back", headers=BASIC),
        "playground.restart": post("/playground/member_check/restart", headers=BASIC),
        "webhooks.verify": get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"),
        "webhooks.receive": post("/webhooks/whatsapp", data=cloud,
                                 headers={**signed_headers(cloud, APP_SECRET),
                                          "Content-Type": "application/json"}),
        "submissions.list_submissions": get("/api/submissions?limit=5", headers=BEARER),
        "submissions.get_submission": get("/api/submissions/abc", headers=BEARER),
        "dashboard.submissions_csv": get("/dashboard/submissions.csv", headers=BASIC),
        "media.media": None,  # needs a link signed by the app: built in check_every_route
    }


def flow_init(url: str, keypair) -> requests.Response:
    """WhatsApp's INIT, encrypted and signed: the endpoint opens a Flow session in Redis."""
    client = FlowClient(url, keypair[1], APP_SECRET)
    raw, _ = client.seal({"version": "3.0", "action": "INIT", "flow_token": "tok-503"})
    return client.post(raw, {HEADER: sign(APP_SECRET, raw)})


def check_every_route(app, keypair):
    with LiveServer(app) as server:
        calls = probes(server.url, keypair)
        store = app.extensions["media"]
        media_id, exp = store.media_id("receipt"), int(time.time()) + 600
        calls["media.media"] = lambda: requests.get(
            f"{server.url}/media/{media_id}?exp={exp}&sig={store.signature(media_id, exp)}", timeout=10)
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
        assert endpoints == set(calls), "a route without a probe: add one above"
        answers = {name: call() for name, call in sorted(calls.items())}
    for name, resp in answers.items():
        # The demo backend has no Redis either: "x" is simply not in its data.
        expected = 404 if name.startswith("demo_api.") else WITHOUT_REDIS.get(name, 503)
        assert resp.status_code == expected, (name, resp.status_code, resp.text[:200])
        if expected == 503 and name not in OWN_503:
            assert resp.headers.get("Retry-After", "").isdigit(), name
            assert "Traceback" not in resp.text
    return answers


def config(app_config, redis_url):
    return {**app_config, "REDIS_URL": redis_url, "DASHBOARD_PASSWORD": PASSWORD, "API_TOKEN": API_TOKEN,
            "WASENDER_WEBHOOK_SECRET": WASENDER_SECRET}


def test_every_route_with_redis_stopped(app_config, keypair, caplog):
    app = create_app(config(app_config, f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens
    answers = check_every_route(app, keypair)
    assert answers["send_api.send_flow"].json()["error"] == "Service Unavailable"
    assert answers["submissions.list_submissions"].json()["submissions"] == []  # SQL, not Redis
    assert "Exception on" not in caplog.text  # Flask's line for an unhandled exception (a 500)


class LoadingRedis:
    """A real redis-server that stays in its LOADING state for minutes: it replays a dump of
    KEYS keys with ``key-load-delay`` between them. Each value is over the 1 KiB of dump after
    which a loading server serves its clients, so it answers (LOADING) within one key's delay."""

    KEYS, VALUE_BYTES, DELAY_US = 10_000, 1100, 20_000

    def __init__(self, workdir):
        self.workdir, self.port, self.proc = workdir, free_port(), None

    def _start(self, *extra):
        return subprocess.Popen([redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                                 "--dir", str(self.workdir), "--save", "", "--appendonly", "no", *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        writer = self._start()
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            wait_for(lambda: _answers(client), message="redis-server to take the data set")
            with client.pipeline(transaction=False) as pipe:
                for i in range(self.KEYS):
                    pipe.set(f"k{i}", os.urandom(self.VALUE_BYTES))  # RDB compresses anything less random
                pipe.execute()
            client.save()
        finally:
            writer.kill()
            writer.wait(timeout=10)
        self.proc = self._start("--key-load-delay", str(self.DELAY_US),
                                "--loading-process-events-interval-bytes", "1024")

        def loading():
            try:
                client.ping()
            except redis_lib.exceptions.BusyLoadingError:
                return True
            except redis_lib.exceptions.ConnectionError:
                return False
            raise AssertionError("redis-server finished loading before the test could use it")

        wait_for(loading, message="redis-server to answer LOADING")
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __exit__(self, *exc):
        self.proc.kill()  # it would finish loading first on SIGTERM
        self.proc.wait(timeout=10)


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis_lib.exceptions.ConnectionError:
        return False


def test_every_route_while_redis_is_loading(app_config, keypair, tmp_path, caplog):
    with LoadingRedis(tmp_path) as loading:
        app = create_app(config(app_config, loading.url))
        check_every_route(app, keypair)
        with pytest.raises(redis_lib.exceptions.BusyLoadingError):  # still loading at the end
            redis_lib.Redis.from_url(loading.url).ping()
    assert "POST /api/flows/<flow_name>/send: Redis unavailable (BusyLoadingError)" in caplog.text
    assert "Exception on" not in caplog.text
