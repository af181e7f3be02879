"""Recovery end to end: real scheduler-enabled workers, real Redis, loopback Graph and WASender.

Ladders are seconds long here (RECOVERY_STEPS=2s,4s,6s); the scheduler ticks about once a second.
"""
from __future__ import annotations

import time

import pytest
import requests
from rq.registry import ScheduledJobRegistry

from app import create_app
from conftest import LiveServer, wait_for
from stack import API, PHONE, Stack, buttons, chain, stack_config
from standins.graph import graph_error
from workers.queues import queue


@pytest.fixture
def base_cfg(app_config, graph, wasender):
    return stack_config(app_config, graph, wasender)


def test_abandoned_flow_gets_each_step_once_in_order_and_old_tokens_get_427(base_cfg, keypair, graph):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)  # the user wrote to us: window open
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        opened = time.time()
        assert stack.client().init(token).screen == "MEMBER_LOOKUP"
        # The user gets as far as the confirmation, then leaves.
        assert stack.client().exchange(token, "MEMBER_LOOKUP", {"member_id": "MEM123"}).screen == "CONFIRM"
        wait_for(lambda: len(graph.sent_messages()) == 4, timeout=30, message="three recovery steps")
        wait_for(lambda: stack.sessions.get(token)["state"] == "gave_up", timeout=15, message="give up")
        assert stack.scheduled() == 0
        client = stack.client()
        tokens = chain(stack.sessions, token)
        # Every replaced token answers 427 pointing at the newer message.
        for old in tokens[:-1]:
            refused = client.init(old)
            assert refused.status == 427 and "newer one" in refused.body["error_msg"]
        # The newest still opens, with what the user entered carried forward.
        latest = client.init(tokens[-1])
        assert latest.status == 200 and latest.data["member_id_value"] == "MEM123"
    sent = graph.matching("POST", "/messages")
    delays = [round(r.at - opened, 1) for r in sent[1:]]
    for delay, due in zip(delays, (2, 4, 6)):
        assert due - 0.5 <= delay <= due + 2.5, delays
    assert len(set(tokens)) == 4 and tokens[0] == token
    # Inside the window each step asks first, with Resume / Stop quick replies.
    for body in graph.sent_messages()[1:]:
        assert body["to"] == PHONE and buttons(body) == ["resume", "stop"]
    events = [e["event"] for e in stack.sessions.timeline(token)]
    assert "abandoned" in events and "recovering" in events and events[-1] == "gave_up"


def complete(client, token):
    assert client.init(token).status == 200
    assert client.exchange(token, "MEMBER_LOOKUP", {"member_id": "VIP999"}).screen == "CONFIRM"
    assert client.exchange(token, "CONFIRM", {"member_id": "VIP999"}).screen == "SUCCESS"


def test_completion_mid_ladder_cancels_the_rest(base_cfg, keypair, graph):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        stack.client().init(token)
        wait_for(lambda: len(graph.sent_messages()) == 2, timeout=15, message="the first recovery step")
        wait_for(lambda: len(chain(stack.sessions, token)) == 2, message="the old token replaced")
        complete(stack.client(), chain(stack.sessions, token)[-1])
        wait_for(lambda: stack.sessions.get(token)["state"] == "recovered", message="origin recovered")
        wait_for(lambda: stack.scheduled() == 0, message="pending steps cancelled")
        assert len(graph.sent_messages()) == 2
        today = stack.app.extensions["metrics"].snapshot(days=1)["flows"]["member_check"]["today"]
        assert today["counters"]["sent"] == 1 and today["counters"]["abandoned"] == 1
        assert today["recovered_by"] == {"cloud:step1": 1}


def test_completed_before_the_first_step_sends_nothing(base_cfg, keypair, graph):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        complete(stack.client(), token)
        wait_for(lambda: stack.scheduled() == 0, message="the ladder cancelled on completion")
        assert stack.sessions.get(token)["state"] == "completed"
    assert len(graph.sent_messages()) == 1


def test_tokenless_completion_stops_the_ladder(base_cfg, keypair, graph):
    # The completion webhook had no flow_token: the user's last completion of this flow is what
    # the step finds, and it must not send a false "you didn't finish".
    with Stack(base_cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        contacts.inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        stack.client().init(token)
        contacts.record_completion(PHONE, "member_check")
        wait_for(lambda: stack.sessions.get(token)["state"] == "recovered", timeout=15,
                 message="the first step to find the completion")
        wait_for(lambda: stack.scheduled() == 0, timeout=15, message="the later steps to run and skip")
    assert len(graph.sent_messages()) == 1


def test_opt_out_on_wasender_suppresses_every_step(base_cfg, keypair, graph, wasender):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        stack.client().init(token)
        event = {"event": "messages.upsert", "timestamp": 1, "data": {"messages": [
            {"key": {"id": "ws-1", "fromMe": False, "remoteJid": f"{PHONE}@s.whatsapp.net",
                     "cleanedSenderPn": PHONE}, "messageBody": "STOP", "message": {"conversation": "STOP"}}]}}
        url = f"{stack.server.url}/webhooks/wasender"
        assert requests.post(url, json=event, timeout=5).status_code == 401
        assert requests.post(url, json=event, headers={"X-Webhook-Signature": "nope"},
                             timeout=5).status_code == 403
        ok = requests.post(url, json=event, headers={"X-Webhook-Signature": "ws-secret"}, timeout=5)
        assert ok.status_code == 200
        wait_for(lambda: stack.app.extensions["contacts"].opted_out(PHONE), message="opt-out recorded")
        skipped = lambda: [e for e in stack.sessions.timeline(token) if e["event"] == "recovery_skipped"]
        wait_for(lambda: len(skipped()) == 3, timeout=20, message="every step skipped")
    assert len(graph.sent_messages()) == 1
    # The only message after STOP: its confirmation, once, on the channel the user wrote on.
    assert [m["text"] for m in wasender.sent()] == [
        "Done — you won't get any more reminders from us. Reply RESUME if you change your mind."]


def test_quiet_hours_push_steps_to_the_end_of_them(base_cfg, keypair, graph):
    now = time.gmtime()
    start, end = (now.tm_hour - 1) % 24, (now.tm_hour + 2) % 24
    cfg = {**base_cfg, "QUIET_HOURS": f"{start:02d}:00-{end:02d}:00"}
    with Stack(cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        stack.client().init(token)
        wait_for(lambda: stack.scheduled() == 3, message="three scheduled steps")
        redis = stack.app.extensions["redis"]
        registry = ScheduledJobRegistry(queue=queue(redis, "flowgate-default"))
        due = [registry.get_scheduled_time(j) for j in registry.get_job_ids()]
        assert all(d.hour == end and d.minute == 0 for d in due), due
        assert all(d.timestamp() > time.time() + 3600 for d in due)


def test_outside_the_window_the_template_carries_the_flow(base_cfg, keypair, graph):
    cfg = {**base_cfg, "FLOW_TEMPLATES": {"member_check": ("member_check_invite", "en_US")}}
    with Stack(cfg, keypair) as stack:
        token = stack.send()  # no inbound message from this user: outside the 24-hour window
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the template")
    body = graph.sent_messages()[0]
    assert body["type"] == "template" and body["template"]["name"] == "member_check_invite"
    button = body["template"]["components"][0]
    assert button["sub_type"] == "flow" and button["parameters"][0]["action"]["flow_token"] == token


def test_outside_the_window_without_template_goes_to_wasender_in_hybrid(base_cfg, keypair, graph, wasender):
    with Stack(base_cfg, keypair) as stack:
        stack.send()
        wait_for(lambda: len(wasender.sent()) == 1, message="the WASender message")
    assert graph.sent_messages() == []
    assert wasender.sent()[0]["to"] == f"+{PHONE}" and "Reply RESUME" in wasender.sent()[0]["text"]


def test_cloud_only_records_the_refusal(base_cfg, keypair, graph, wasender):
    with Stack({**base_cfg, "FOLLOWUP_CHANNEL": "cloud"}, keypair) as stack:
        token = stack.send()
        wait_for(lambda: stack.sessions.get(token)["state"] == "failed", message="the refusal recorded")
        detail = [e["detail"] for e in stack.sessions.timeline(token) if e["event"] == "send_refused"]
    assert detail and "131047" in detail[0]
    assert graph.sent_messages() == [] and wasender.sent() == []


def test_permanent_cloud_error_falls_back_to_wasender(base_cfg, keypair, graph, wasender):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        graph.fail_next(400, graph_error(131026, "Message undeliverable"))
        stack.send()
        wait_for(lambda: len(wasender.sent()) == 1, message="the WASender message")
    assert len(graph.matching("POST", "/messages")) == 1


def test_cloud_down_falls_back_after_retries_are_exhausted(base_cfg, keypair, graph, wasender):
    with Stack(base_cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        graph.fail_next(500, graph_error(131000, "Something went wrong"), times=50)
        stack.send()
        wait_for(lambda: len(wasender.sent()) == 1, timeout=20, message="the WASender message")
    # JOB_RETRY_BACKOFF=1,1: the first try and two retries at the Cloud API, then WASender.
    assert len(graph.matching("POST", "/messages")) == 3


def test_wasender_not_connected_is_recorded_and_nothing_sent(base_cfg, keypair, graph, wasender):
    wasender.session_status = "need_scan"
    with Stack(base_cfg, keypair) as stack:
        token = stack.send()
        wait_for(lambda: stack.sessions.get(token)["state"] == "failed", message="the refusal recorded")
        detail = [e["detail"] for e in stack.sessions.timeline(token) if e["event"] == "send_refused"]
    assert detail and "need_scan" in detail[0]
    assert wasender.sent() == []


def test_client_error_gets_one_fallback_with_a_fresh_flow(base_cfg, keypair, graph):
    cfg = {**base_cfg, "RECOVERY_STEPS": "1h"}  # keep the ladder out of the way
    with Stack(cfg, keypair) as stack:
        stack.app.extensions["contacts"].inbound(PHONE)
        token = stack.send()
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        client = stack.client()
        client.init(token)
        for _ in range(3):  # the client may report the same error more than once
            assert client.error(token, "MEMBER_LOOKUP", "invalid-screen-transition").body == {
                "data": {"acknowledged": True}}
        wait_for(lambda: len(graph.sent_messages()) == 2, message="the fallback message")
        wait_for(lambda: len(chain(stack.sessions, token)) == 2, message="the old token replaced")
        fresh = chain(stack.sessions, token)[-1]
        assert fresh != token and client.init(token).status == 427
        assert client.init(fresh).screen == "MEMBER_LOOKUP"
        notes = [e for e in stack.sessions.timeline(token) if e["event"] == "fallback"]
        assert [n["detail"] for n in notes] == ["client_error"]
    fallback = graph.sent_messages()[1]
    assert ("ran into a problem" in fallback["interactive"]["body"]["text"]
            and buttons(fallback) == ["resume", "stop"])
    assert len(graph.sent_messages()) == 2


def test_send_api_answers_json_errors(base_cfg, keypair):
    app = create_app(base_cfg)
    with LiveServer(app) as server:
        url = f"{server.url}/api/flows/member_check/send"
        assert requests.post(url, json={"to": PHONE}, timeout=5).status_code == 401
        wrong = requests.post(url, json={"to": PHONE}, headers={"Authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401 and wrong.json()["error"]
        auth = {"Authorization": f"Bearer {API}"}
        assert requests.post(url, data="nope", headers=auth, timeout=5).status_code == 400
        assert requests.post(url, json={"to": "12"}, headers=auth, timeout=5).status_code == 400
        assert requests.post(f"{server.url}/api/flows/nope/send", json={"to": PHONE}, headers=auth,
                             timeout=5).status_code == 404
        ok = requests.post(url, json={"to": "+1 555 000 1234", "data": {"member_id": "MEM123"}},
                           headers=auth, timeout=5)
    assert ok.status_code == 202 and ok.json()["state"] == "sent"
    session = app.extensions["sessions"].get(ok.json()["flow_token"])
    assert session["phone"] == PHONE and session["issued"] == "1"
    assert app.extensions["sessions"].carried(ok.json()["flow_token"]) == {"member_id": "MEM123"}


def test_cli_send_single_and_bulk_csv(base_cfg, tmp_path):
    app = create_app({**base_cfg, "FLOW_TOKEN_POLICY": "strict"})
    runner = app.test_cli_runner()
    one = runner.invoke(args=["flows", "send", "member_check", PHONE, "--data", "member_id=VIP999"])
    assert one.exit_code == 0, one.output
    token = __import__("json").loads(one.output)["flow_token"]
    assert app.extensions["sessions"].get(token)["state"] == "sent"
    # Strict policy: a token we issued is accepted, an unknown one is not.
    assert app.extensions["sessions"].visit(token, "member_check", None).state == "opened"
    assert app.extensions["sessions"].visit("fg_unknown", "member_check", None).state == "unknown"
    csv_file = tmp_path / "phones.csv"
    csv_file.write_text("phone,name\n+15550001111,A\n15550002222,B\nnot-a-number,C\n")
    bulk = runner.invoke(args=["flows", "send", "member_check", "--csv", str(csv_file)])
    assert bulk.exit_code == 0, bulk.output
    assert "queued 2, skipped 1 invalid rows" in bulk.output
    queued = queue(app.extensions["redis"], "flowgate-default").get_job_ids()
    assert len(queued) == 3  # one delivery job per Flow, run by the workers
