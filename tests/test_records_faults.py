"""The records store with real processes around it: a STOP that reached WASender blocks a later
Cloud API send (the consent ledger is read before every send), PostgreSQL restarted while workers
process completions (jobs retried, nothing lost, nothing doubled), and a database outage during a
web request (503 with Retry-After, never a traceback)."""
from __future__ import annotations

import time

import pytest
import requests
import sqlalchemy as sa

from conftest import wait_for
from pg import started_cluster
from stack import API, PHONE, Stack, stack_config
from standins.meta_webhooks import completion

STOP = {"event": "messages.upsert", "timestamp": 1, "data": {"messages": [
    {"key": {"id": "ws-stop-1", "fromMe": False, "remoteJid": f"{PHONE}@s.whatsapp.net",
             "cleanedSenderPn": PHONE}, "messageBody": "STOP", "message": {"conversation": "STOP"}}]}}


@pytest.fixture
def own_cluster():
    """A cluster this test may stop and start (the session's is shared by other tests)."""
    with started_cluster() as cluster:
        yield cluster


def test_a_stop_on_wasender_blocks_a_later_cloud_api_send(app_config, database_url, keypair, graph, wasender):
    cfg = stack_config({**app_config, "DATABASE_URL": database_url}, graph, wasender)
    with Stack(cfg, keypair) as stack:
        stack.app.extensions["records"].upgrade()
        assert stack.wasender(STOP).status_code == 200
        ledger = stack.app.extensions["records"].consent
        wait_for(lambda: ledger.opted_out([f"p:{PHONE}"]), message="the STOP in the consent ledger")
        wait_for(lambda: len(wasender.sent()) == 1, message="the STOP's one confirmation, on WASender")
        # Ninety days later the contact record has expired; the ledger has not.
        stack.redis.delete(f"fg:contact:{PHONE}")
        token = stack.send()  # a Flow by the Cloud API, as FOLLOWUP_CHANNEL=hybrid sends first
        wait_for(lambda: stack.sessions.get(token)["state"] == "failed", message="the send refused")
    assert graph.sent_messages() == []
    refusals = [e["detail"] for e in stack.sessions.timeline(token) if e["event"] == "send_refused"]
    assert refusals == ["user opted out"]
    (row,) = ledger.history([f"p:{PHONE}"])
    assert (row["event"], row["channel"], row["message_id"]) == ("opt_out", "wasender", "ws-stop-1")


def test_postgres_restarted_mid_run_loses_and_doubles_nothing(app_config, own_cluster, keypair, graph,
                                                               wasender):
    url = own_cluster.create_database()
    cfg = stack_config({**app_config, "DATABASE_URL": url}, graph, wasender, FOLLOWUP_CHANNEL="cloud",
                       JOB_MAX_RETRIES=30, JOB_RETRY_BACKOFF=(1,))
    messages = [completion(token=None, context_id=None, user=f"1555000{i:04d}") for i in range(40)]
    with Stack(cfg, keypair, workers=2) as stack:
        records = stack.app.extensions["records"]
        records.upgrade()
        for batch in range(0, 40, 4):
            stack.whatsapp(*messages[batch:batch + 4])
        wait_for(lambda: records.submissions.count() >= 5, message="the workers storing completions")
        own_cluster.stop("fast")  # connections cut mid-job; workers' writes fail and are retried
        time.sleep(0.1)
        assert not own_cluster.accepting()
        held = records.submissions  # noqa: F841 - the same engine reconnects (pool_pre_ping)
        time.sleep(3)  # jobs keep failing against a dead server meanwhile: the point of the test
        own_cluster.start()
        own_cluster.wait_up()
        wait_for(lambda: records.submissions.count() == 40, timeout=120, message="every completion stored")
        wait_for(lambda: len(graph.sent_messages()) == 40, timeout=120, message="every confirmation sent")
        logged = lambda: records.messages.for_user([m["from"] for m in messages], limit=500)
        wait_for(lambda: len(logged()) == 40, timeout=60, message="every confirmation logged")
    with records.engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT message_id FROM submissions")).scalars().all()
    assert sorted(ids) == sorted(m["id"] for m in messages)  # each once
    assert sorted(m["to"] for m in graph.sent_messages()) == sorted(m["from"] for m in messages)


def test_a_database_outage_in_a_request_is_a_503(app_config, own_cluster, caplog):
    from app import create_app

    app = create_app({**app_config, "DATABASE_URL": own_cluster.create_database(), "API_TOKEN": API})
    app.extensions["records"].upgrade()
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {API}"}
    assert client.get("/api/submissions", headers=bearer).status_code == 200
    own_cluster.stop("fast")
    for path in ("/api/submissions", "/api/submissions/sub_x"):
        resp = client.get(path, headers=bearer)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "10"
        assert resp.json["description"] == "records store unavailable; try again shortly"
    assert "database unavailable (OperationalError) on GET /api/submissions" in caplog.text
    assert "Traceback" not in caplog.text
    own_cluster.start()
    own_cluster.wait_up()
    assert client.get("/api/submissions", headers=bearer).status_code == 200  # back by itself
