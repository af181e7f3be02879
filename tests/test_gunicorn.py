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
