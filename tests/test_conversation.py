"""Recovery chats end to end: the user answers a recovery message on either channel.

Every reply goes through the real webhook route of its channel (POST /webhooks/whatsapp signed with
X-Hub-Signature-256, POST /webhooks/wasender with X-Webhook-Signature), is run by a real
``flask worker``, and is answered through the loopback Graph and WASender stand-ins. The first
ladder step comes 1 s after the Flow is opened.
"""
from __future__ import annotations

import hashlib
import time

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import wait_for
from flows.webhook import digest
from stack import PHONE, Stack, buttons, chain, flow_tokens, stack_config
from standins.graph import graph_error
from standins.meta_webhooks import PHONE_NUMBER_ID, button_reply, image_message, text_message
from standins.receiver import ReceiverStandIn
from standins.wasender import inbound_event
from workers.conversation import HANDOFF_TEXT, STOP_TEXT
from workers.recovery import job_id

HANDOFF_SECRET = "handoff-secret-42"


@pytest.fixture
def business():
    with ReceiverStandIn(secret=HANDOFF_SECRET) as r:
        yield r


@pytest.fixture
def cfg(app_config, graph, wasender, business):
    return stack_config(app_config, graph, wasender, RECOVERY_STEPS="1s,1h",
                        HANDOFF_FORWARD_URL=business.handoff, HANDOFF_FORWARD_SECRET=HANDOFF_SECRET)


def finished(stack, jid: str) -> bool:
    job = Job.fetch_many([jid], connection=stack.redis, serializer=JSONSerializer)[0]
    return job is not None and job.get_status(refresh=True) == "finished"


def reply_cloud(stack, message) -> None:
    """The user's message through Meta's webhook; returns once a worker has answered it."""
    assert stack.whatsapp(message)["enqueued"] == 1
    wait_for(lambda: finished(stack, f"inbound-{digest(message['id'])}"), message="the reply job")


def reply_wasender(stack, text: str, message_id: str) -> None:
    assert stack.wasender(inbound_event(PHONE, text, message_id)).status_code == 200
    key = hashlib.sha256(message_id.encode()).hexdigest()[:32]
    wait_for(lambda: finished(stack, f"wsin-{key}"), message="the WASender reply job")


def abandon_until_first_step(stack, graph, wasender=None) -> str:
    """The user writes to us (window open), gets the Flow, enters MEM123, leaves; the first
    recovery step goes out (through WASender when ``wasender`` is given: Cloud refuses it)."""
    reply_cloud(stack, text_message("hello", user=PHONE, timestamp=now()))
    token = stack.send()
    wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
    client = stack.client()
    assert client.init(token).screen == "MEMBER_LOOKUP"
    assert client.exchange(token, "MEMBER_LOOKUP", {"member_id": "MEM123"}).screen == "CONFIRM"
    if wasender is not None:
        graph.fail_next(400, graph_error(131026, "Message undeliverable"))
        wait_for(lambda: len(wasender.sent()) == 1, message="the first step, on WASender")
    else:
        wait_for(lambda: len(graph.sent_messages()) == 2, message="the first recovery step")
        assert buttons(graph.sent_messages()[1]) == ["resume", "stop"]
    wait_for(lambda: len(chain(stack.sessions, token)) == 2, message="the step's token")
    return token


def now() -> str:
    return str(int(time.time()))


def sent_from(graph) -> list[str]:
    """The business number each Cloud message went out from (POST /<version>/<number>/messages)."""
    return [r.path.split("/")[-2] for r in graph.matching("POST", "/messages")]


def texts_to_user(graph, wasender) -> list[str]:
    cloud = [b["text"]["body"] for b in graph.sent_messages() if b.get("type") == "text"]
    return cloud + [m["text"] for m in wasender.sent()]


# --- resume ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["words", "button"])
def test_resume_on_cloud_sends_exactly_one_prefilled_flow(cfg, keypair, graph, wasender, how):
    with Stack(cfg, keypair) as stack:
        origin = abandon_until_first_step(stack, graph)
        step_token = chain(stack.sessions, origin)[-1]
        message = (text_message("ok send it again", user=PHONE) if how == "words"
                   else button_reply("resume", "Resume", user=PHONE))
        reply_cloud(stack, message)
        assert stack.whatsapp(message) == {"enqueued": 0, "duplicates": 1, "ignored": 0}  # Meta's retry
        assert len(flow_tokens(graph)) == 2, "the first Flow and exactly one new one"
        fresh = flow_tokens(graph)[-1]
        assert fresh not in (origin, step_token) and chain(stack.sessions, origin)[-1] == fresh
        client = stack.client()
        for old in (origin, step_token):
            assert client.init(old).status == 427
        reopened = client.init(fresh)
        assert reopened.status == 200 and reopened.data["member_id_value"] == "MEM123"
        assert any(e["event"] == "sent" and e["detail"].startswith(f"resume-{origin}")
                   for e in stack.sessions.timeline(origin))
    assert texts_to_user(graph, wasender) == [] and len(graph.sent_messages()) == 3
    # Ours by default; the resumed Flow answers the user from the number they wrote to.
    assert sent_from(graph) == [cfg["WHATSAPP_PHONE_NUMBER_ID"]] * 2 + [PHONE_NUMBER_ID]


def test_resume_typed_on_wasender_gets_the_flow_by_the_channel_rules(cfg, keypair, graph, wasender):
    with Stack(cfg, keypair) as stack:
        origin = abandon_until_first_step(stack, graph, wasender)
        assert "Reply RESUME" in wasender.sent()[0]["text"] and "tap below" not in wasender.sent()[0]["text"]
        step_token = chain(stack.sessions, origin)[-1]
        reply_wasender(stack, "Resume", "ws-resume-1")
        reply_wasender(stack, "resume", "ws-resume-1")  # WASender redelivers: the same message id
        # The window is open (the user wrote to our Cloud number), so the Flow goes there.
        assert len(flow_tokens(graph)) == 2
        fresh = flow_tokens(graph)[-1]
        client = stack.client()
        assert client.init(step_token).status == 427
        assert client.init(fresh).data["member_id_value"] == "MEM123"
    assert len(wasender.sent()) == 1


# --- stop ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channel", ["cloud", "wasender"])
def test_stop_suppresses_every_later_step_and_is_confirmed_once(app_config, graph, wasender,
                                                                keypair, channel):
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS="1s,2s,3s")
    with Stack(cfg, keypair) as stack:
        origin = abandon_until_first_step(stack, graph, wasender if channel == "wasender" else None)
        before = (len(graph.sent_messages()), len(wasender.sent()))
        if channel == "cloud":
            reply_cloud(stack, button_reply("stop", "Stop", user=PHONE))
            reply_cloud(stack, text_message("STOP", user=PHONE))  # a second STOP, typed
        else:
            reply_wasender(stack, "stop", "ws-stop-1")
            reply_wasender(stack, "Stop please", "ws-stop-2")
        assert stack.app.extensions["contacts"].opted_out(PHONE)
        later = [job_id("rec", origin, s) for s in ("step2", "step3")]
        gone_or_done = lambda: all(  # noqa: E731
            Job.fetch_many([j], connection=stack.redis, serializer=JSONSerializer)[0] is None
            or finished(stack, j) for j in later)
        wait_for(gone_or_done, timeout=15, message="the later steps cancelled or skipped")
        assert stack.scheduled() == 0
        assert "opted_out" in [e["event"] for e in stack.sessions.timeline(origin)]
        after = (len(graph.sent_messages()), len(wasender.sent()))
        # Nothing more of the ladder on either channel; one confirmation, on the channel written on.
        assert after == (before[0] + (channel == "cloud"), before[1] + (channel == "wasender"))
        assert texts_to_user(graph, wasender).count(STOP_TEXT) == 1
        if channel == "cloud":
            assert graph.sent_messages()[-1]["text"]["body"] == STOP_TEXT
            assert sent_from(graph)[-1] == PHONE_NUMBER_ID != cfg["WHATSAPP_PHONE_NUMBER_ID"]
        else:  # "Reply RESUME if you change your mind": it undoes the opt-out and resumes
            reply_wasender(stack, "RESUME", "ws-resume-after-stop")
            assert not stack.app.extensions["contacts"].opted_out(PHONE)
            assert len(flow_tokens(graph)) == 2
            assert stack.client().init(flow_tokens(graph)[-1]).data["member_id_value"] == "MEM123"


# --- hand-over -------------------------------------------------------------------------------------
@pytest.mark.parametrize("channel", ["cloud", "wasender"])
def test_unrecognised_replies_are_forwarded_each_and_acknowledged_once(cfg, keypair, graph, wasender,
                                                                       business, channel):
    with Stack(cfg, keypair) as stack:
        origin = abandon_until_first_step(stack, graph, wasender if channel == "wasender" else None)
        if channel == "cloud":
            first = text_message("what is this about? I never asked for a form", user=PHONE)
            reply_cloud(stack, first)
            assert stack.whatsapp(first)["duplicates"] == 1  # Meta's retry of the same message
            reply_cloud(stack, image_message(user=PHONE))  # a photo of the member card
            reply_cloud(stack, button_reply("resume", "Resume", user=PHONE))  # after the hand-over
        else:
            reply_wasender(stack, "what is this about? I never asked for a form", "ws-q-1")
            reply_wasender(stack, "what is this about? I never asked for a form", "ws-q-1")
            reply_wasender(stack, "my card number is on the back, right?", "ws-q-2")
            reply_wasender(stack, "resume", "ws-q-3")
        forwarded = business.received()
        assert business.bad_signatures == 0 and len(forwarded) == 3, forwarded
        assert [f["channel"] for f in forwarded] == [channel] * 3
        assert (forwarded[0]["text"].startswith("what is this about?")
                and forwarded[0]["flow"] == "member_check")
        assert (forwarded[0]["from"] == PHONE
                and forwarded[0]["flow_token"] == chain(stack.sessions, origin)[-1])
        assert len({f["message_id"] for f in forwarded}) == 3
        notes = [e for e in stack.sessions.timeline(origin) if e["event"] == "user_message"]
        assert len(notes) == 3 and notes[0]["detail"].startswith(f"{channel}: what is this about?")
        assert stack.sessions.get(origin).get("handed_over")
    # Told once that a person will answer; no new Flow after the hand-over.
    assert texts_to_user(graph, wasender).count(HANDOFF_TEXT) == 1
    assert len(flow_tokens(graph)) == 1


def test_handoff_forward_refused_by_the_business_is_recorded(cfg, keypair, graph, wasender, business):
    with Stack({**cfg, "HANDOFF_FORWARD_SECRET": "not-the-shared-secret"}, keypair) as stack:
        origin = abandon_until_first_step(stack, graph)
        reply_cloud(stack, text_message("who are you?", user=PHONE))
        failed = [e for e in stack.sessions.timeline(origin) if e["event"] == "handoff_forward_failed"]
        assert failed and "HTTP 401" in failed[0]["detail"]
    assert business.bad_signatures == 1 and len(business.requests) == 1  # 4xx: not retried
    assert texts_to_user(graph, wasender) == [HANDOFF_TEXT]


def test_a_stop_sent_as_a_reply_on_wasender_is_read(cfg, keypair, graph, wasender):
    # A reply to our message (or a text with a link) comes as an extendedTextMessage, with no
    # `conversation` and no `messageBody`: WASender's receiving guide reads
    # message.extendedTextMessage.text first. A STOP there must not be missed.
    event = {"event": "messages.upsert", "timestamp": 1, "data": {"messages": [
        {"key": {"id": "ws-ext-1", "fromMe": False, "remoteJid": f"{PHONE}@s.whatsapp.net",
                 "cleanedSenderPn": PHONE},
         "message": {"extendedTextMessage": {"text": "STOP", "contextInfo": {"stanzaId": "3EB0C0FFEE"}}}}]}}
    with Stack(cfg, keypair) as stack:
        assert stack.wasender(event).status_code == 200
        wait_for(lambda: stack.app.extensions["contacts"].opted_out(PHONE), message="the opt-out")
        wait_for(lambda: wasender.sent(), message="the STOP confirmation")
    assert [m["text"] for m in wasender.sent()] == [STOP_TEXT]
