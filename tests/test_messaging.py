"""Cloud API message shapes (protocol doc 8.1/8.2) through the Graph stand-in, and the console channel."""
from __future__ import annotations

import logging
import time

import pytest

from app import create_app
from messaging import cloud
from messaging.cloud import CloudApi
from messaging.console import ConsoleChannel
from messaging.graph import PERMANENT, GraphClient
from messaging.outbound import Outbound
from messaging.router import Refused
from standins.graph import ACCESS_TOKEN, graph_error
from stores.correlation import Correlation
from workers import sending

PHONE_ID = "106540352242922"


@pytest.fixture
def cloud_app(app_config, graph):
    return create_app({**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                       "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "FOLLOWUP_CHANNEL": "cloud"})


def test_text_goes_to_the_numbers_messages_edge(graph):
    channel = CloudApi(GraphClient(graph.url, "v23.0", ACCESS_TOKEN, PHONE_ID))
    wamid = channel.send("16505551234", cloud.text("Thanks!"), callback="confirm:x")
    assert wamid.startswith("wamid.")
    (request,) = graph.matching("POST", f"/v23.0/{PHONE_ID}/messages")
    assert request.json() == {"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": "16505551234", "type": "text",
                              "text": {"body": "Thanks!", "preview_url": False},
                              "biz_opaque_callback_data": "confirm:x"}


def test_flow_message_navigate_shape():
    message = cloud.flow(flow_token="fg_t", flow_id="1234", cta="Check membership", body="Hi",
                         header="Members", footer="Flowgate", screen="MEMBER_LOOKUP", data={"k": "v"})
    assert message == {"type": "interactive", "interactive": {
        "type": "flow", "header": {"type": "text", "text": "Members"}, "body": {"text": "Hi"},
        "footer": {"text": "Flowgate"},
        "action": {"name": "flow", "parameters": {
            "flow_message_version": "3", "flow_token": "fg_t", "flow_id": "1234",
            "flow_cta": "Check membership", "flow_action": "navigate", "mode": "published",
            "flow_action_payload": {"screen": "MEMBER_LOOKUP", "data": {"k": "v"}}}}}}


def test_flow_message_data_exchange_by_name_has_no_payload():
    params = cloud.flow(flow_token="t", flow_name="member_check", cta="Go", body="b",
                        action="data_exchange")["interactive"]["action"]["parameters"]
    assert params["flow_name"] == "member_check" and "flow_id" not in params
    assert params["flow_action"] == "data_exchange" and "flow_action_payload" not in params


@pytest.mark.parametrize("kwargs", [
    {"flow_id": "1", "flow_name": "x"}, {}, {"flow_id": "1", "action": "data_exchange", "screen": "S"},
    {"flow_id": "1", "action": "open"},
])
def test_flow_message_refuses_contradictions(kwargs):
    with pytest.raises(ValueError):
        cloud.flow(flow_token="t", cta="Go", body="b", **kwargs)


def test_template_with_a_flow_button():
    message = cloud.template(name="member_check_v1", language="en_US", flow_token="fg_t",
                             flow_action_data={"prefill": "MEM"}, body_parameters=["Jane"])
    assert message["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Jane"}]},
        {"type": "button", "sub_type": "flow", "index": "0",
         "parameters": [{"type": "action", "action": {"flow_token": "fg_t",
                                                      "flow_action_data": {"prefill": "MEM"}}}]}]


def test_a_flow_sent_through_the_router_is_linked_to_its_token(cloud_app, graph):
    ext = cloud_app.extensions
    with cloud_app.app_context():
        ext["contacts"].inbound("16505551234", "wamid.in", time.time(), "text")  # the window is open
        ext["sessions"].issue("fg_abc", "member_check", "16505551234")
        assert sending.deliver_flow("fg_abc") == "sent"
    wamid = ext["sessions"].get("fg_abc")["wamid"]
    assert Correlation(ext["redis"], ext["sessions"]).token_for(wamid) == "fg_abc"
    assert graph.sent_messages()[0]["interactive"]["action"]["parameters"]["flow_token"] == "fg_abc"


def test_the_router_refuses_with_the_cloud_error_classified(cloud_app, graph):
    graph.fail_next(400, graph_error(131026))
    with pytest.raises(Refused) as info:
        cloud_app.extensions["router"].deliver(Outbound(to="16505551234", text="hi", key="k"), in_window=True)
    assert (info.value.kind, info.value.code) == (PERMANENT, 131026)


def test_console_channel_without_an_access_token(app, caplog):
    router = app.extensions["router"]
    assert router.mode == "console"
    with caplog.at_level(logging.INFO, logger="flowgate.console"):
        sent = router.deliver(Outbound(to="16505551234", text="Thanks for your answers", key="k"))
    (entry,) = ConsoleChannel(app.extensions["redis"]).outbox()
    assert sent.channel == "console"
    assert entry["id"] == sent.message_id and entry["body"]["text"]["body"] == "Thanks for your answers"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "•••1234" in logged and "16505551234" not in logged and "Thanks" not in logged


def test_console_outbox_cli(app):
    app.extensions["router"].deliver(Outbound(to="16505551234", text="one", key="k"))
    result = app.test_cli_runner().invoke(args=["messages", "console"])
    assert result.exit_code == 0 and '"body": "one"' in result.output


# --- flow_cta: at most 20 characters (pywa, whatsapp-api-js, Sinch), not 30 -----------------------

def test_a_long_call_to_action_is_cut_to_20_and_meta_takes_it(graph):
    from messaging import channels
    from messaging.outbound import Outbound

    channel = channels.CloudChannel(CloudApi(GraphClient(graph.url, "v23.0", ACCESS_TOKEN, PHONE_ID)), {})
    out = Outbound(to="16505551234", text="Please finish", key="k", flow_name="member_check",
                   flow_token="fg_t", cta="Complete your booking now")  # 25 characters
    channel.send(out, in_window=True)
    (sent,) = graph.accepted()
    assert sent["interactive"]["action"]["parameters"]["flow_cta"] == "Complete your bookin"


def test_the_flow_builder_refuses_a_call_to_action_over_20():
    with pytest.raises(ValueError):
        cloud.flow(flow_token="t", flow_name="f", cta="x" * 21, body="b")
    assert cloud.flow(flow_token="t", flow_name="f", cta="x" * 20, body="b")["interactive"]["action"][
        "parameters"]["flow_cta"] == "x" * 20


def test_a_bsuid_is_sent_by_recipient_and_answered_with_user_id(graph):
    from flows.identity import User

    bsuid = "US.13491208655302741918"
    client = GraphClient(graph.url, "v23.0", ACCESS_TOKEN, PHONE_ID)
    CloudApi(client).send(User(bsuid=bsuid, username="@x"), cloud.text("Hi"))
    CloudApi(client).send(User(phone="16505551234", bsuid=bsuid), cloud.text("Hi"))
    first, second = graph.sent_messages()
    assert first["recipient"] == bsuid and "to" not in first
    assert second["to"] == "16505551234" and "recipient" not in second  # a known phone: `to`
    reply = client.request("POST", f"{PHONE_ID}/messages",
                           json=cloud.envelope(User(bsuid=bsuid), cloud.text("x")))
    assert reply["contacts"] == [{"input": bsuid, "user_id": bsuid}]


def test_131062_is_permanent():
    from messaging.graph import classify

    assert classify(400, 131062) == PERMANENT
