"""Log hygiene: the whole demo on real processes with known secrets, phones and form values, then
every line any process wrote is searched for them.

gunicorn (stdout + stderr, access log included) and a real worker, against the Graph and WASender
stand-ins: a Flow sent through the API, played through the encrypted endpoint with known form
values, its completion webhook and confirmation; a second Flow opened and left until a recovery
step goes out; STOP on both channels. Phones may appear masked, tokens shortened — never whole.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess

import requests
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from conftest import ROOT, SECRET_KEY, demo_api_url, free_port, venv_bin, wait_for
from devtools.simulator import FlowClient
from procs import Workers, env_from_config
from standins.graph import GraphStandIn
from standins.meta_webhooks import body_of, completion, messages_change, signed_headers, text_message
from standins.wasender import WASenderStandIn
from workers.queues import QUEUES, queue

APP_SECRET = "hyg-app-secret-3f9a1c55"
ACCESS_TOKEN = "hyg-graph-token-77c1e0d4"
WASENDER_KEY = "hyg-wasender-key-51d2aa"
WASENDER_HOOK = "hyg-wasender-hook-8e4b10"
API_TOKEN = "hyg-api-token-c0ffee42"
FORWARD_SECRET = "hyg-forward-secret-9d8c"
PASSWORD = "hyg-dashboard-pass-6a7b"
USER, LEAVER = "15557654321", "15557650088"
FORM = {"name": "Zelda Quixotic", "email": "zelda.quixotic@example.org", "phone": "+14155550199"}


def test_no_secret_phone_token_or_form_value_in_any_log(redis_url, keypair, tmp_path, redis_client):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with GraphStandIn(access_token=ACCESS_TOKEN) as graph, WASenderStandIn(api_key=WASENDER_KEY) as wasender:
        cfg = {"APP_ENV": "production", "REDIS_URL": redis_url, "FLOW_PRIVATE_KEY": keypair[0],
               "WHATSAPP_APP_SECRET": APP_SECRET, "SECRET_KEY": SECRET_KEY, "DEMO_FLOWS": True,
               "LOOKUP_BASE_URL": demo_api_url(),
               "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
               "WHATSAPP_PHONE_NUMBER_ID": "100200300", "WASENDER_API_BASE": f"{wasender.url}/api",
               "WASENDER_API_KEY": WASENDER_KEY, "WASENDER_WEBHOOK_SECRET": WASENDER_HOOK,
               # Two WASender sends (the STOP replies) may come a few ms apart from one worker:
               # a bucket that refuses the second would log its retry's traceback.
               "WASENDER_RATE": "10000/s", "API_TOKEN": API_TOKEN,
               "COMPLETION_FORWARD_SECRET": FORWARD_SECRET,
               "DASHBOARD_PASSWORD": PASSWORD, "FOLLOWUP_CHANNEL": "hybrid",
               "FLOW_TEMPLATES": {"member_check": ("member_check_invite", "en_US"),
                                  "service_area": ("service_area_invite", "en_US")},
               "RECOVERY_STEPS": "1s", "RECOVERY_GIVE_UP_AFTER": "1s",
               "JOB_RETRY_BACKOFF": (1,), "JOB_MAX_RETRIES": 1, "PORT": port, "WEB_CONCURRENCY": 2,
               "DATABASE_URL": f"sqlite:///{tmp_path / 'records.sqlite3'}"}
        log_path = tmp_path / "gunicorn.log"
        with open(log_path, "w") as log:
            web = subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT,
                                   env=env_from_config(cfg), stdout=log, stderr=subprocess.STDOUT)
        workers = Workers(cfg, 1)
        tokens = []
        try:
            wait_for(lambda: _up(base), timeout=30, message="gunicorn")
            workers.__enter__()
            api = {"Authorization": f"Bearer {API_TOKEN}"}

            # 1. A Flow sent, played with known values, completed, confirmed.
            token = requests.post(f"{base}/api/flows/service_area/send", json={"to": USER}, headers=api,
                                  timeout=10).json()["flow_token"]
            tokens.append(token)
            client = FlowClient(f"{base}/flows/service_area", keypair[1], APP_SECRET)
            assert client.init(token).screen == "POSTCODE"
            assert client.exchange(token, "POSTCODE", {"postal_code": "10001"}).screen == "DETAILS"
            assert client.exchange(token, "DETAILS", FORM).screen == "SUCCESS"
            message = completion(token=token, values={**FORM, "postal_code": "10001"}, user=USER,
                                 context_id=None)
            raw = body_of(messages_change(messages=[message]))
            assert requests.post(f"{base}/webhooks/whatsapp", data=raw,
                                 headers=signed_headers(raw, APP_SECRET), timeout=10).status_code == 200
            wait_for(lambda: any((b.get("text") or {}).get("body") for b in graph.sent_messages()),
                     timeout=20, message="the confirmation")

            # 2. A Flow opened and left: its recovery step goes out.
            left = requests.post(f"{base}/api/flows/member_check/send", json={"to": LEAVER}, headers=api,
                                 timeout=10).json()["flow_token"]
            tokens.append(left)
            assert FlowClient(f"{base}/flows/member_check", keypair[1], APP_SECRET).init(left).status == 200
            wait_for(lambda: any(b.get("biz_opaque_callback_data", "").startswith(f"rec-{left}")
                                 for b in graph.sent_messages()), timeout=20, message="the recovery step")

            # 3. STOP on both channels.
            stop = body_of(messages_change(messages=[text_message("STOP", user=LEAVER)]))
            assert requests.post(f"{base}/webhooks/whatsapp", data=stop,
                                 headers=signed_headers(stop, APP_SECRET), timeout=10).status_code == 200
            event = {"event": "messages.upsert", "data": {"messages": {
                "key": {"id": "WAS-STOP-1", "remoteJid": f"{USER}@s.whatsapp.net"}, "messageBody": "STOP"}}}
            assert requests.post(f"{base}/webhooks/wasender", data=json.dumps(event),
                                 headers={"X-Webhook-Signature": WASENDER_HOOK,
                                          "Content-Type": "application/json"}, timeout=10).status_code == 200
            # A few more requests that carry secrets in headers: a wrong and a right API token.
            requests.get(f"{base}/api/submissions", headers={"Authorization": "Bearer wrong"}, timeout=10)
            assert requests.get(f"{base}/api/submissions", headers=api, timeout=10).status_code == 200
            wait_for(lambda: _drained(redis_client), timeout=30, message="every job to finish")
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
            worker_log = workers.output() if workers.logs else ""
            workers.__exit__(None, None, None)
    logs = {"gunicorn": log_path.read_text(), "worker": worker_log}
    assert "flowgate.completion" in logs["worker"] and "method=POST" in logs["gunicorn"]  # logs were captured

    forbidden = [APP_SECRET, ACCESS_TOKEN, WASENDER_KEY, WASENDER_HOOK, API_TOKEN, FORWARD_SECRET, PASSWORD,
                 USER, LEAVER, FORM["phone"], FORM["phone"][1:], FORM["name"], FORM["email"], *tokens]
    forbidden += [line for line in keypair[0].splitlines() if len(line) > 40]  # the private key's body
    for name, text in logs.items():
        for value in forbidden:
            assert value not in text, f"{name} log carries {value[:12]}…: " + next(
                line for line in text.splitlines() if value in line)[:300]
        assert "Traceback" not in text, name
    # Phones appear, but masked; tokens appear, but shortened.
    everything = "".join(logs.values())
    assert "•••4321" in everything  # the one masked form (flows/identity.py mask_phone)
    assert any(token[:9] in everything for token in tokens)


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def _drained(redis) -> bool:
    return not any(queue(redis, n).count or StartedJobRegistry(queue=queue(redis, n)).count
                   or ScheduledJobRegistry(queue=queue(redis, n)).count for n in QUEUES)
