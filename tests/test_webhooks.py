"""GET|POST /webhooks/whatsapp: handshake, signatures, bad bodies, dedupe, and Redis down → 503."""
from __future__ import annotations

import json

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from app import create_app
from conftest import APP_SECRET, PREVIOUS_SECRET, free_port
from flows.signing import HEADER, sign
from standins.meta_webhooks import (
    body_of, completion, flows_change, messages_change, new_wamid, signed_headers, status, text_message,
)
from workers.queues import DEFAULT, HIGH, LOW

URL = "/webhooks/whatsapp"
VERIFY_TOKEN = "verify-me-4711"


@pytest.fixture
def app(app_config):
    return create_app({**app_config, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})


def post(client, raw: bytes, secret: str | None = APP_SECRET, headers: dict | None = None):
    hdrs = signed_headers(raw, secret) if secret else {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return client.post(URL, data=raw, headers=hdrs)


def queued(redis_client, name: str) -> list[dict]:
    q = Queue(name, connection=redis_client, serializer=JSONSerializer)
    return [{"func": j.func_name, "args": j.args, "id": j.id} for j in q.get_jobs()]


# --- GET: the verification handshake (protocol doc 7.2) ------------------------------------------
def test_verification_echoes_the_raw_challenge(client):
    resp = client.get(URL, query_string={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                         "hub.challenge": "1158201444"})
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_verification_refuses_anything_else(client, query):
    resp = client.get(URL, query_string=query)
    assert resp.status_code == 403 and resp.get_data() == b""


def test_verification_refused_when_no_token_is_configured(app_config):
    client = create_app(app_config).test_client()  # WHATSAPP_VERIFY_TOKEN unset
    resp = client.get(URL,
                      query_string={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})
    assert resp.status_code == 403


# --- POST: signatures (protocol doc 4) --------------------------------------------------------------
def test_unsigned_post_is_401_and_stores_nothing(client, redis_client):
    resp = post(client, body_of(messages_change([completion()])), secret=None)
    assert resp.status_code == 401 and resp.json["error"] == "signature missing"
    assert queued(redis_client, HIGH) == []


def test_wrongly_signed_post_is_403(client, redis_client):
    raw = body_of(messages_change([completion()]))
    assert post(client, raw, secret="not-the-secret").status_code == 403
    tampered = raw.replace(b"MEM123", b"MEM999")
    assert client.post(URL, data=tampered, headers={HEADER: sign(APP_SECRET, raw)}).status_code == 403
    assert queued(redis_client, HIGH) == []


def test_previous_app_secret_is_accepted_during_rotation(client):
    assert post(client, body_of(messages_change([completion()])), secret=PREVIOUS_SECRET).status_code == 200


# --- POST: bad bodies get 400, never a 500 ----------------------------------------------------------
@pytest.mark.parametrize("raw, reason", [
    (b"not json", "body is not JSON"),
    (b"[1, 2]", "body is not a JSON object"),
    (b'{"object": "page", "entry": []}', "object is not whatsapp_business_account"),
    (b'{"object": "whatsapp_business_account", "entry": {}}', "entry is not a list"),
    (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),  # deep nesting: RecursionError, not a 500
])
def test_malformed_bodies_are_400_with_a_reason(client, raw, reason, caplog):
    resp = post(client, raw)
    assert resp.status_code == 400
    assert resp.json["description"] == reason
    assert any("webhook refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("raw, reason", [
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}',
     "change without field and value"),
    (b'{"object": "whatsapp_business_account", "entry": [7]}', "entry without a changes list"),
    (json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages", "value": {"messages": [{"type": "text"}]}}]}]}).encode(),
     "message without id"),
    (json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages", "value": {"statuses": "sent"}}]}]}).encode(), "statuses is not a list"),
    (json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages",
         "value": {"statuses": [{"id": "wamid.X"}]}}]}]}).encode(), "status without status"),
    (body_of(flows_change(event=None)), "flows change without an event"),
])
def test_a_malformed_event_is_acknowledged_and_dead_lettered(client, redis_client, raw, reason):
    """Per event, not per batch: a 400 would make Meta redeliver, then drop, the whole batch."""
    resp = post(client, raw)
    assert resp.status_code == 200 and resp.json["dead_lettered"] == 1 and resp.json["enqueued"] == 0
    (dl_id,) = [i.decode() for i in redis_client.zrange("fg:deadletters", 0, -1)]
    assert json.loads(redis_client.get(f"fg:deadletter:{dl_id}"))["reason"] == reason
    assert post(client, raw).json["dead_lettered"] == 1  # Meta's redelivery: still one dead letter
    assert redis_client.zcard("fg:deadletters") == 1


def test_oversized_body_is_413(client):
    raw = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert post(client, raw).status_code == 413


def test_unsubscribed_fields_are_acknowledged_not_enqueued(client, redis_client):
    raw = body_of({"field": "message_template_status_update", "value": {"event": "APPROVED"}})
    resp = post(client, raw)
    assert resp.status_code == 200 and resp.json == {"enqueued": 0, "duplicates": 0, "ignored": 1}


# --- What is enqueued, where, and only once ---------------------------------------------------------
def test_each_kind_goes_to_its_job_and_queue(client, redis_client):
    done, text = completion(), text_message("STOP")
    raw = body_of(messages_change([done, text], [status("wamid.sent1", "failed", code=131047)]),
                  flows_change(alert_state="ACTIVATED"))
    resp = post(client, raw)
    assert resp.status_code == 200 and resp.json["enqueued"] == 4
    assert [(j["func"], j["args"][0]["id"]) for j in queued(redis_client, HIGH)] == [
        ("workers.completion.process_completion", done["id"])]
    assert [j["func"] for j in queued(redis_client, DEFAULT)] == ["workers.inbound.record_inbound"]
    assert sorted(j["func"] for j in queued(redis_client, LOW)) == [
        "workers.inbound.record_flow_event", "workers.inbound.record_status"]
    assert queued(redis_client, HIGH)[0]["args"][1] == "106540352242922"  # reply from this number


def test_the_same_completion_three_times_is_one_job(client, redis_client):
    raw = body_of(messages_change([completion()]))
    answers = [post(client, raw).json for _ in range(3)]
    assert [a["enqueued"] for a in answers] == [1, 0, 0]
    assert [a["duplicates"] for a in answers] == [0, 1, 1]
    assert len(queued(redis_client, HIGH)) == 1


def test_a_lost_seen_mark_is_caught_by_the_unique_job_id(client, redis_client):
    """Redis failing between enqueue and mark: the redelivery must not enqueue a second job."""
    raw = body_of(messages_change([completion()]))
    assert post(client, raw).json["enqueued"] == 1
    for key in redis_client.scan_iter("fg:seen:*"):
        redis_client.delete(key)
    again = post(client, raw)
    assert again.status_code == 200 and again.json == {"enqueued": 0, "duplicates": 1, "ignored": 0}
    assert len(queued(redis_client, HIGH)) == 1
    assert list(redis_client.scan_iter("fg:seen:*")), "the mark is written on the redelivery"


def test_seen_marks_outlive_metas_seven_day_retry_window(client, redis_client):
    post(client, body_of(messages_change([completion()])))
    (key,) = list(redis_client.scan_iter("fg:seen:*"))
    assert redis_client.ttl(key) > 7 * 24 * 3600


def test_statuses_of_one_message_are_distinct_events(client, redis_client):
    wamid = new_wamid()
    raw = body_of(messages_change(statuses=[status(wamid, "sent"), status(wamid, "delivered")]))
    assert post(client, raw).json["enqueued"] == 2
    assert post(client, raw).json["duplicates"] == 2


def test_redis_down_is_503_so_meta_retries(app_config, caplog):
    dead = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    resp = post(dead.test_client(), body_of(messages_change([completion()])))
    assert resp.status_code == 503 and resp.json == {"error": "storage unavailable"}
    assert any("answering 503" in r.getMessage() for r in caplog.records)


def test_redis_stopping_mid_life_is_503_then_200_when_back(app_config, tmp_path):
    """A dedicated redis-server (not the session one) is stopped and restarted on its port."""
    from conftest import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    try:
        client = create_app({**app_config, "REDIS_URL": server.url}).test_client()
        raw = body_of(messages_change([completion()]))
        server.stop()
        assert post(client, raw).status_code == 503
        server.start()
        resp = post(client, raw)
        assert resp.status_code == 200 and resp.json["enqueued"] == 1
    finally:
        server.stop()


def test_no_phone_number_or_form_value_in_the_logs(client, caplog):
    post(client, body_of(messages_change([completion(values={"member_id": "SECRET42"}), text_message("hi")])))
    post(client, b"not json")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "16505551234" not in text and "SECRET42" not in text
