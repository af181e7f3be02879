"""The Heroku path end to end: app.json filled as a Heroku user would, the Procfile's release, web
and worker run as dynos against a real redis-server (the add-on) and the Graph stand-in; a Flow
sent, played by the simulator and completed, its confirmation sent once. And the release phase
refusing a bad configuration in one line."""
from __future__ import annotations

import time

import redis as redis_lib
import requests

import config
from conftest import APP_SECRET, demo_api_url, free_port, wait_for
from flows import keys
from devtools.simulator import FlowClient
from heroku import Dyno, app_json, config_vars, procfile
from workers.jobs import queue_figures
from standins.graph import ACCESS_TOKEN
from standins.meta_webhooks import (USER, body_of, completion, messages_change, signed_headers,
                                    text_message)

PHONE_ID = "106540352242922"
# Set by Heroku or its add-on, never typed into app.json; FLOWGATE_INSTANCE_DIR is development's.
PROVIDED = {"PORT", "DYNO", "REDIS_URL", "REDIS_TLS_URL", "DATABASE_URL", "FLOWGATE_INSTANCE_DIR"}
GENERATED = {"SECRET_KEY", "API_TOKEN", "DASHBOARD_PASSWORD", "WHATSAPP_VERIFY_TOKEN"}


class Recording(dict):
    """An environment that remembers every variable the app asked for."""

    def __init__(self):
        super().__init__()
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def variables_the_app_reads() -> set:
    env = Recording()
    config.load(env)
    config.server(env)
    return env.asked


def idle(redis) -> bool:
    return all(q["depth"] == 0 and q["started"] == 0 and q["scheduled"] == 0 for q in queue_figures(redis))


def typed_by_the_user(keypair, graph_url: str, **more) -> dict:
    """What the deploy form asks for (the required variables), plus what this test points
    elsewhere: Meta's Graph API at the stand-in, and the demo flows switched on to play one."""
    return {"FLOW_PRIVATE_KEY": keys.one_line(keypair[0]), "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
            "WHATSAPP_API_BASE": graph_url, "DEMO_FLOWS": "true",
            # The demo flows' lookups at a business API over real HTTP (the demo backend, served
            # on its own loopback port as a business would serve theirs).
            "LOOKUP_BASE_URL": demo_api_url(), **more}


def test_app_json_declares_every_variable_the_app_reads_with_a_description():
    manifest = app_json()
    declared = set(manifest["env"])
    missing = variables_the_app_reads() - PROVIDED - declared
    assert not missing, f"read by config.py but not in app.json: {sorted(missing)}"
    for name, entry in manifest["env"].items():
        assert len(entry.get("description", "")) > 20, name
    assert {n for n, e in manifest["env"].items() if e.get("generator") == "secret"} == GENERATED
    assert [a["plan"] for a in manifest["addons"]] == ["heroku-redis:mini", "heroku-postgresql:essential-0"]
    assert set(manifest["formation"]) == {"web", "worker"}
    assert list(procfile()) == ["release", "web", "worker"]
    assert "doctor --offline" in procfile()["release"]
    assert procfile()["release"].endswith("&& flask --app app records migrate")  # fails the release loudly


def test_required_is_exactly_what_the_release_refuses_without(redis_url, postgres_url, keypair, graph):
    manifest = app_json()
    required = {n for n, e in manifest["env"].items()
                if e.get("required", True) and "value" not in e and "generator" not in e}
    assert required == {"FLOW_PRIVATE_KEY", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN",
                        "WHATSAPP_PHONE_NUMBER_ID"}
    typed = {n: v for n, v in typed_by_the_user(keypair, graph.url).items() if n in required}
    env = config_vars(manifest, typed, {"heroku-redis": redis_url, "heroku-postgresql": postgres_url})
    code, output = Dyno("release", env).run()
    assert code == 0, output  # nothing optional is needed
    for name in sorted(required | {"SECRET_KEY"}):  # SECRET_KEY: generated, and refused if deleted
        code, output = Dyno("release", {k: v for k, v in env.items() if k != name}).run()
        failed = [line for line in output.splitlines() if line.startswith("✗")]
        assert code == 1 and len(failed) == 1 and failed[0].startswith(f"✗ {name}:"), (name, output)


def test_a_bad_config_fails_the_release_in_one_line(redis_url, postgres_url, keypair, graph):
    typed = typed_by_the_user(keypair, graph.url, FLOW_PRIVATE_KEY="paste the key here")
    env = config_vars(app_json(), typed, {"heroku-redis": redis_url, "heroku-postgresql": postgres_url})
    code, output = Dyno("release", env).run()
    failed = [line for line in output.splitlines() if line.startswith("✗")]
    assert code == 1
    assert (len(failed) == 1 and failed[0].startswith("✗ FLOW_PRIVATE_KEY:")
            and "flask keys generate" in failed[0])
    assert "Traceback" not in output and "paste the key here" not in output


def test_deploy_release_web_worker_then_a_flow_completed_and_confirmed_once(redis_url, postgres_url, keypair,
                                                                            graph):
    graph.add_phone_number(PHONE_ID)
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    # Heroku Postgres's own form of the URL (postgres://), which SQLAlchemy alone refuses.
    heroku_postgres = postgres_url.replace("postgresql://", "postgres://", 1)
    env = config_vars(app_json(), typed_by_the_user(keypair, graph.url, PUBLIC_BASE_URL=web_url),
                      {"heroku-redis": redis_url, "heroku-postgresql": heroku_postgres})

    code, output = Dyno("release", env).run()
    assert code == 0 and "✗" not in output, output
    assert graph.requests == []  # the release phase calls nobody outside

    web = Dyno("web", env, port=port).start()
    worker = Dyno("worker", env).start()
    try:
        def healthy():
            web.running()
            try:
                return requests.get(f"{web_url}/health", timeout=1).json()["redis"] == "ok"
            except requests.ConnectionError:
                return False

        wait_for(healthy, timeout=30, message="the web dyno to answer /health")
        worker.wait_output("Listening on", timeout=30)

        # The user writes first (a Flow message needs the 24-hour window; outside it, a template).
        hello = body_of(messages_change([text_message("hi", timestamp=str(int(time.time())))]))
        answer = requests.post(f"{web_url}/webhooks/whatsapp", data=hello,
                               headers=signed_headers(hello, APP_SECRET), timeout=5)
        assert answer.status_code == 200 and answer.json()["enqueued"] == 1
        queues = redis_lib.Redis.from_url(redis_url)
        wait_for(lambda: idle(queues), timeout=30, message="the worker to record the message")
        sent = requests.post(f"{web_url}/api/flows/member_check/send", json={"to": USER}, timeout=5,
                             headers={"Authorization": f"Bearer {env['API_TOKEN']}"})
        assert sent.status_code == 202, sent.text
        token = sent.json()["flow_token"]
        flow_message = wait_for(
            lambda: next((m for m in graph.accepted() if m.get("type") == "interactive"), None),
            timeout=30, message="the worker to send the Flow through the Graph API")
        assert flow_message["interactive"]["action"]["parameters"]["flow_token"] == token

        client = FlowClient(f"{web_url}/flows/member_check", keypair[1], APP_SECRET)
        assert client.init(token).screen == "MEMBER_LOOKUP"
        confirm = client.exchange(token, "MEMBER_LOOKUP", {"member_id": "MEM123"})
        assert confirm.screen == "CONFIRM", confirm.body
        done = client.exchange(token, "CONFIRM", confirm.data)
        assert done.screen == "SUCCESS", done.body
        params = done.data["extension_message_response"]["params"]

        raw = body_of(messages_change([completion(token=token, values=params, context_id=None)]))
        for expected in ({"enqueued": 1, "duplicates": 0},
                         {"enqueued": 0, "duplicates": 1}):  # Meta redelivers
            answer = requests.post(f"{web_url}/webhooks/whatsapp", data=raw,
                                   headers=signed_headers(raw, APP_SECRET), timeout=5)
            assert answer.status_code == 200 and {k: answer.json()[k] for k in expected} == expected

        def confirmations():
            return [m for m in graph.accepted() if m.get("type") == "text" and m.get("to") == USER]

        wait_for(confirmations, timeout=30, message="the worker to confirm the completion")
        wait_for(lambda: idle(queues), timeout=30, message="every job to finish")
        assert len(confirmations()) == 1
        assert not [q for q in queue_figures(queues) if q["failed"]]
    finally:
        worker_code, web_code = worker.stop(), web.stop()
    assert web_code == 0, web.output[-2000:]
    assert worker_code == 0, worker.output[-2000:]
    assert "Traceback" not in web.output + worker.output
