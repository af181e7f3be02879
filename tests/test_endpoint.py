"""The encrypted endpoint end to end: real HTTP on loopback, the simulator as WhatsApp."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app import create_app
from conftest import APP_SECRET, PREVIOUS_SECRET, LiveServer
from flows import crypto
from flows.protocol import Screen
from flows.registry import Flow
from flows.signing import sign
from devtools.simulator import FlowClient

MEMBER_JSON = Path(__file__).resolve().parent.parent / "examples" / "member_check.json"


def test_ping_answers_active_without_a_token(flow_client):
    reply = flow_client().ping()
    assert reply.status == 200
    assert reply.body == {"data": {"status": "active"}}


def test_reply_is_base64_text_encrypted_with_the_inverted_iv(flow_client, keypair):
    client = flow_client()
    raw, sealed = client.seal({"version": "3.0", "action": "ping"})
    resp = client.post(raw, {"X-Hub-Signature-256": sign(APP_SECRET, raw)})
    assert resp.headers["Content-Type"].startswith("text/plain")
    blob = base64.b64decode(resp.text, validate=True)
    # Decrypting with the request IV itself must fail: only the inverted IV opens the reply.
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    with pytest.raises(InvalidTag):
        AESGCM(sealed.aes_key).decrypt(sealed.iv, blob, None)
    assert json.loads(AESGCM(sealed.aes_key).decrypt(crypto.flip_iv(sealed.iv), blob, None)) == {
        "data": {"status": "active"}}


def test_member_check_error_then_happy_path(flow_client, app):
    client = flow_client()
    first = client.init("tok-happy")
    assert first.status == 200
    assert first.screen == "MEMBER_LOOKUP"
    assert first.data == {"member_id_error": "", "member_id_value": ""}  # neutral, never null

    bad = client.exchange("tok-happy", "MEMBER_LOOKUP", {"member_id": "NOPE42"})
    assert bad.screen == "MEMBER_LOOKUP"
    assert bad.data["member_id_error"] == "We couldn't find that member ID"
    assert "Check your card" in bad.data["error_message"]

    good = client.exchange("tok-happy", "MEMBER_LOOKUP", {"member_id": " vip999 "})
    assert good.screen == "CONFIRM"
    assert good.data == {"member_id": "VIP999", "member_name": "Victor Ito", "tier": "VIP"}

    done = client.exchange("tok-happy", "CONFIRM", {"member_id": "VIP999", "confirm": True})
    assert done.screen == "SUCCESS"
    params = done.data["extension_message_response"]["params"]
    assert params == {"member_id": "VIP999", "member_name": "Victor Ito", "flow_token": "tok-happy"}

    session = app.extensions["sessions"].get("tok-happy")
    assert session["state"] == "completed"
    events = [e["event"] for e in app.extensions["sessions"].timeline("tok-happy")]
    assert events == ["opened", "screen", "screen", "completed"]


def test_completed_token_gets_427_with_encrypted_message(flow_client):
    client = flow_client()
    client.init("tok-done")
    client.exchange("tok-done", "MEMBER_LOOKUP", {"member_id": "MEM123"})
    client.exchange("tok-done", "CONFIRM", {"member_id": "MEM123"})
    again = client.exchange("tok-done", "CONFIRM", {"member_id": "MEM123"})
    assert again.status == 427
    assert "already completed" in again.body["error_msg"]


def test_expired_session_gets_427(app_config, keypair):
    app = create_app({**app_config, "FLOW_SESSION_LIFETIME": 1})
    sessions = app.extensions["sessions"]
    sessions.visit("tok-old", "member_check", None, now=1000.0)  # opened long ago
    with LiveServer(app) as server:
        client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        reply = client.exchange("tok-old", "MEMBER_LOOKUP", {"member_id": "MEM123"})
    assert reply.status == 427
    assert "expired" in reply.body["error_msg"]
    assert sessions.get("tok-old")["state"] == "expired"


def test_strict_policy_refuses_tokens_it_did_not_issue(app_config, keypair):
    app = create_app({**app_config, "FLOW_TOKEN_POLICY": "strict"})
    with LiveServer(app) as server:
        client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        assert client.init("tok-foreign").status == 427
        assert client.ping().status == 200  # pings carry no token and are never refused
    assert app.extensions["sessions"].get("tok-foreign") is None


def test_open_policy_creates_the_session_on_first_sight(flow_client, app):
    assert flow_client().init("tok-new").status == 200
    session = app.extensions["sessions"].get("tok-new")
    assert session["state"] == "in_progress" and session["screen"] == "MEMBER_LOOKUP"
    assert session["flow"] == "member_check"


def test_missing_token_is_tolerated(flow_client):
    client = flow_client()
    reply = client.exchange(None, "MEMBER_LOOKUP", {"member_id": "MEM123"})
    assert reply.status == 200 and reply.screen == "CONFIRM"


def test_error_notification_is_acknowledged_and_recorded(flow_client, app):
    client = flow_client()
    client.init("tok-err")
    reply = client.error("tok-err", "MEMBER_LOOKUP", "payload-schema-error")
    assert reply.body == {"data": {"acknowledged": True}}
    session = app.extensions["sessions"].get("tok-err")
    assert session["state"] == "failed"
    timeline = app.extensions["sessions"].timeline("tok-err")
    assert timeline[-1]["detail"] == "client error: payload-schema-error"


@pytest.mark.parametrize("error_field", ["error", "error_key", "error_message"])
def test_each_error_field_is_an_error_notification(flow_client, error_field):
    reply = flow_client().send({"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP",
                                "flow_token": "tok-e", "data": {error_field: "x"}})
    assert reply.body == {"data": {"acknowledged": True}}


# --- 421: the request cannot be decrypted ---------------------------------------------------


def test_wrong_public_key_gets_421(flow_client, other_keypair):
    assert flow_client(public_key=other_keypair[1]).ping().status == 421


def _tampered(client, mutate):
    raw, _ = client.seal({"version": "3.0", "action": "ping"})
    body = json.loads(raw)
    mutate(body)
    raw = json.dumps(body).encode()
    return client.post(raw, {"X-Hub-Signature-256": sign(APP_SECRET, raw)})


def test_corrupted_tag_gets_421(flow_client, caplog):
    def flip_last_byte(body):
        blob = bytearray(base64.b64decode(body["encrypted_flow_data"]))
        blob[-1] ^= 0x01
        body["encrypted_flow_data"] = base64.b64encode(bytes(blob)).decode()

    resp = _tampered(flow_client(), flip_last_byte)
    assert resp.status_code == 421
    assert "AES-GCM tag check failed" in caplog.text


@pytest.mark.parametrize("field", ["encrypted_flow_data", "encrypted_aes_key", "initial_vector"])
def test_bad_base64_gets_421(flow_client, field):
    resp = _tampered(flow_client(), lambda body: body.__setitem__(field, "***not base64***"))
    assert resp.status_code == 421


def test_swapped_iv_gets_421(flow_client):
    resp = _tampered(flow_client(), lambda body: body.__setitem__(
        "initial_vector", base64.b64encode(b"\x00" * 16).decode()))
    assert resp.status_code == 421


def test_key_rotation_previous_key_still_decrypts(app_config, keypair, other_keypair):
    # The new key is current; requests still encrypted to the old public key keep working.
    cfg = {**app_config, "FLOW_PRIVATE_KEY": other_keypair[0], "FLOW_PRIVATE_KEY_PREVIOUS": keypair[0]}
    app = create_app(cfg)
    with LiveServer(app) as server:
        old = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        new = FlowClient(f"{server.url}/flows/member_check", other_keypair[1], APP_SECRET)
        assert old.ping().body == {"data": {"status": "active"}}
        assert new.ping().body == {"data": {"status": "active"}}
    app_without_previous = create_app({**app_config, "FLOW_PRIVATE_KEY": other_keypair[0]})
    with LiveServer(app_without_previous) as server:
        old = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        assert old.ping().status == 421


# --- 432: signatures ------------------------------------------------------------------------


def test_missing_signature_gets_432_with_empty_body(flow_client):
    reply = flow_client(app_secret=None).ping()
    assert reply.status == 432 and reply.text == ""


def test_wrong_signature_gets_432(flow_client):
    assert flow_client(app_secret="not-the-secret").ping().status == 432


def test_malformed_signature_header_gets_432(flow_client):
    assert flow_client().send({"version": "3.0", "action": "ping"}, signature="md5=abc").status == 432


def test_previous_app_secret_is_accepted(flow_client):
    assert flow_client(app_secret=PREVIOUS_SECRET).ping().status == 200


# --- 400 and 413: bodies that are not Flow requests ---------------------------------------------


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "body is not JSON"),
    (b"[1, 2]", "body is not a JSON object"),
    (b'{"encrypted_flow_data": "x", "encrypted_aes_key": "y"}', "initial_vector missing or not a string"),
    (b'{"encrypted_flow_data": 1, "encrypted_aes_key": "y", "initial_vector": "z"}',
     "encrypted_flow_data missing or not a string"),
])
def test_malformed_body_gets_400_with_reason(flow_client, raw, reason):
    resp = flow_client().post(raw, {"X-Hub-Signature-256": sign(APP_SECRET, raw)})
    assert resp.status_code == 400
    assert resp.text == reason


def test_decrypted_payload_that_is_not_a_request_gets_400(flow_client):
    reply = flow_client().send({"version": "3.0", "action": "launch_missiles"})
    assert reply.status == 400 and reply.text == "unknown action"


def test_oversized_body_gets_413(app_config, keypair):
    app = create_app({**app_config, "FLOW_MAX_REQUEST_BYTES": 2048})
    with LiveServer(app) as server:
        client = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
        raw = b'{"encrypted_flow_data": "' + b"A" * 4096 + b'"}'
        resp = client.post(raw, {"X-Hub-Signature-256": sign(APP_SECRET, raw)})
    assert resp.status_code == 413
    assert "Traceback" not in resp.text


def test_unknown_flow_gets_404(live_server, keypair):
    client = FlowClient(f"{live_server.url}/flows/no_such_flow", keypair[1], APP_SECRET)
    assert client.ping().status == 404


# --- handler bugs never become a 500 ----------------------------------------------------------


@pytest.fixture
def buggy_app(app_config):
    """The app with one more flow whose handlers misbehave, registered like any flow."""
    app = create_app({**app_config, "FLOW_MAX_RESPONSE_BYTES": 4096})
    flow = Flow("buggy", MEMBER_JSON)

    @flow.on_exchange("MEMBER_LOOKUP")
    def explode(ctx):
        raise RuntimeError("secret-internal-detail")

    @flow.on_exchange("CONFIRM")
    def huge(ctx):
        return Screen("CONFIRM", {"member_name": "x" * 10_000, "tier": None})

    @flow.on_init
    def wrong_screen(ctx):
        return Screen("NOT_IN_THE_JSON", {})

    app.extensions["flows"].add(flow)
    return app


def test_handler_exception_returns_same_screen_with_generic_error(buggy_app, keypair, caplog):
    with LiveServer(buggy_app) as server:
        client = FlowClient(f"{server.url}/flows/buggy", keypair[1], APP_SECRET)
        reply = client.exchange("tok-bug", "MEMBER_LOOKUP", {"member_id": "MEM123"})
    assert reply.status == 200
    assert reply.screen == "MEMBER_LOOKUP"
    assert reply.data == {"error_message": "Something went wrong on our side. Please try again."}
    assert "secret-internal-detail" not in reply.text
    assert "handler raised" in caplog.text and "tok-bug" in caplog.text


def test_oversized_reply_becomes_a_generic_error(buggy_app, keypair, caplog):
    with LiveServer(buggy_app) as server:
        client = FlowClient(f"{server.url}/flows/buggy", keypair[1], APP_SECRET)
        reply = client.exchange("tok-big", "CONFIRM", {})
    assert reply.status == 200 and reply.screen == "CONFIRM"
    assert reply.data["error_message"].startswith("Something went wrong")
    assert "over the 4096 byte limit" in caplog.text


def test_handler_returning_a_screen_not_in_the_json_is_caught(buggy_app, keypair):
    with LiveServer(buggy_app) as server:
        client = FlowClient(f"{server.url}/flows/buggy", keypair[1], APP_SECRET)
        reply = client.init("tok-wrong")
    assert reply.screen == "MEMBER_LOOKUP"
    assert reply.data["error_message"].startswith("Something went wrong")


def test_unknown_screen_gets_a_clear_message(flow_client):
    reply = flow_client().exchange("tok-u", "NO_SUCH_SCREEN", {"x": 1})
    assert reply.status == 200 and reply.screen == "MEMBER_LOOKUP"
    assert "isn't available" in reply.data["error_message"]


def test_none_values_are_stripped_from_replies():
    screen = Screen("S", {"a": None, "b": {"c": None, "d": 1}, "e": [None, 2]})
    assert screen.to_json() == {"screen": "S", "data": {"b": {"d": 1}, "e": [2]}}


def test_validation_failures_reach_the_dashboard_metrics(flow_client, app):
    from metrics import Metrics

    client = flow_client()
    client.exchange("tok-vm", "MEMBER_LOOKUP", {"member_id": "NOPE42"})
    client.exchange("tok-vm", "MEMBER_LOOKUP", {"member_id": ""})
    validation = (Metrics(app.extensions["redis"]).snapshot(days=1)
                  ["flows"]["member_check"]["today"]["validation"])
    assert validation == {"member_id|not_found": 1, "member_id|required": 1}
