"""The real gunicorn, from gunicorn.conf.py, spoken to over loopback."""
from __future__ import annotations

import signal
import subprocess

import requests

from conftest import APP_SECRET, ROOT, free_port, project_env, venv_bin, wait_for
from flows.simulator import FlowClient


def start_gunicorn(env: dict) -> subprocess.Popen:
    return subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_gunicorn_serves_the_member_flow_and_stops_cleanly(redis_url, keypair):
    port = free_port()
    env = project_env(PORT=port, APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=2,
                      FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"),  # Heroku's one-line form
                      WHATSAPP_APP_SECRET=APP_SECRET)
    proc = start_gunicorn(env)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return requests.get(f"{base}/health", timeout=1).json()
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                return None

        assert wait_for(healthy, timeout=20, message="gunicorn /health") == {"status": "ok", "redis": "ok"}
        client = FlowClient(f"{base}/flows/member_check", keypair[1], APP_SECRET)
        assert client.ping().body == {"data": {"status": "active"}}
        assert client.init("tok-g").screen == "MEMBER_LOOKUP"
        assert client.exchange("tok-g", "MEMBER_LOOKUP", {"member_id": "MEM123"}).screen == "CONFIRM"
        done = client.exchange("tok-g", "CONFIRM", {"member_id": "MEM123"})
        assert done.data["extension_message_response"]["params"]["flow_token"] == "tok-g"
        assert client.exchange("tok-g", "CONFIRM", {"member_id": "MEM123"}).status == 427
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


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
