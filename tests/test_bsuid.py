"""Users without phone numbers (WhatsApp usernames): business-scoped user IDs end to end.

Every webhook goes through the real route (signed), is run by a real ``flask worker``, and every
message goes to the loopback Graph / WASender stand-ins, which speak Meta's BSUID shapes: a send
addressed by ``recipient``, ``contacts[].user_id`` in the answer, 131062 for a message a BSUID
cannot receive. Field names: docs/meta-facts.md, "Business-scoped user IDs".
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import APP_SECRET, wait_for
from records.submissions import submission_id
from flows.webhook import digest
from messaging import fallback
from dashboard.activity import recent_sessions
from stack import PHONE, Stack, buttons, chain, stack_config
from standins.graph import graph_error
from standins.meta_webhooks import (body_of, button_reply, by_username, completion, signed_headers, status,
                                    system_change, text_message, user_contact, user_id_update_change)
from workers.conversation import STOP_TEXT
from workers.queues import enqueue

BSUID = "US.13491208655302741918"
USERNAME = "@pablomorales"
CONFIRMATION = "Thank you! We have received your answers."


def say(body: str, **kw) -> dict:
    """A text the user sends now (the 24-hour window counts from its timestamp)."""
    return text_message(body, timestamp=str(int(time.time())), **kw)


def username_only(bsuid: str = BSUID) -> list[dict]:
    """The ``contacts`` of a webhook from a username user whose number Meta may not share."""
    return [user_contact(bsuid=bsuid, username=USERNAME)]


def finished(stack, jid: str) -> bool:
    job = Job.fetch_many([jid], connection=stack.redis, serializer=JSONSerializer)[0]
    return job is not None and job.get_status(refresh=True) == "finished"


def post(stack, message, contacts, kind="inbound") -> None:
    """One user message through the signed webhook; returns once a worker has run its job."""
    assert stack.whatsapp(message, contacts=contacts)["enqueued"] == 1
    wait_for(lambda: finished(stack, f"{kind}-{digest(message['id'])}"), timeout=15,
             message=f"the {kind} job")


def texts(graph, body: str) -> list[dict]:
    return [m for m in graph.sent_messages() if m.get("type") == "text" and m["text"]["body"] == body]


def test_username_user_completes_is_confirmed_once_through_recipient_and_the_chain_runs(
        app_config, graph, wasender, keypair):
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS="2s,1h,2h")
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        # The user writes first: a username user, no `from` on the message, no `wa_id` anywhere.
        hello = by_username(say("hi"), BSUID)
        assert "from" not in hello
        post(stack, hello, username_only())
        assert contacts.in_window(BSUID)
        token = stack.send(phone=BSUID)  # the send API takes a BSUID
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        assert stack.client().init(token).screen == "MEMBER_LOOKUP"  # opened: the ladder starts
        wait_for(lambda: len(graph.sent_messages()) == 2, timeout=20, message="the first recovery step")
        # Resume / Stop: the user taps Resume and gets the Flow again, then completes it.
        post(stack, by_username(button_reply("resume", "Resume"), BSUID), username_only())
        wait_for(lambda: len(graph.sent_messages()) == 3, message="the resumed Flow")
        latest = chain(stack.sessions, token)[-1]
        done = by_username(completion(token=latest, values={"member_id": "VIP999"}), BSUID)
        post(stack, done, username_only(), kind="completion")
        stack.whatsapp(done, contacts=username_only())  # Meta redelivers: deduplicated
        wait_for(lambda: stack.sessions.get(token)["state"] == "recovered", message="the chain recovered")
        wait_for(lambda: stack.scheduled() == 0, message="the rest of the ladder cancelled")
        document = stack.app.extensions["records"].submissions.get(submission_id(done["id"]))
        rows = recent_sessions(stack.redis)
        log = stack.workers.output()
    flow, step, resumed, confirmation = graph.sent_messages()
    # Every message went to the BSUID by `recipient`; none by `to` (there is no number).
    assert all(m["recipient"] == BSUID and "to" not in m for m in graph.sent_messages())
    assert flow["interactive"]["type"] == "flow" and buttons(step) == ["resume", "stop"]
    assert resumed["interactive"]["action"]["parameters"]["flow_token"] == latest
    assert texts(graph, CONFIRMATION) == [confirmation]
    assert wasender.sent() == []
    assert (document["from"] is None and document["user_id"] == BSUID
            and document["response"]["member_id"] == "VIP999")
    assert stack.sessions.get(latest)["state"] == "completed"
    # The dashboard shows the username masked like a phone; no log line carries it or the BSUID.
    assert any(r["phone"] == "@•••les" for r in rows)
    assert any(e["detail"] == "@•••les" for r in rows for e in r["timeline"])
    assert BSUID not in log and "pablomorales" not in log and "US.…2741918" not in log


def test_the_same_user_later_seen_with_a_phone_is_one_contact(app_config, graph, wasender, keypair):
    # A Flow went to the number (outside the window: the template); the user, who has since
    # turned on a username, writes STOP without a number. Then a delivered status names both.
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS="4s,1h",
                       FLOW_TEMPLATES={"member_check": ("member_check_invite", "en_US")})
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        token = stack.send(phone=PHONE)
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the template")
        assert graph.sent_messages()[0]["to"] == PHONE and graph.sent_messages()[0]["type"] == "template"
        stack.client().init(token)
        assert not contacts.in_window(PHONE)
        stop = by_username(say("STOP"), BSUID)
        post(stack, stop, username_only())
        assert contacts.opted_out(BSUID) and not contacts.opted_out(PHONE)  # not yet known as one
        delivered = {**status("wamid.standin1"), "recipient_id": PHONE, "recipient_user_id": BSUID}
        assert stack.whatsapp(statuses=[delivered], contacts=[
            user_contact(bsuid=BSUID, phone=PHONE, username=USERNAME)])["enqueued"] == 1
        wait_for(lambda: contacts.opted_out(PHONE), message="the records linked")
        assert contacts.resolve(PHONE).key == contacts.resolve(BSUID).key
        assert contacts.in_window(PHONE)  # the STOP opened it, under the BSUID: it carried over
        assert token in contacts.recent_sessions(BSUID)
        skipped = lambda: [e for e in stack.sessions.timeline(token) if e["event"] == "recovery_skipped"]
        wait_for(skipped, timeout=20, message="the step to find the opt-out")
    assert "opted out" in skipped()[0]["detail"]
    assert len(graph.sent_messages()) == 2  # the template, and the STOP confirmation: nothing more
    assert texts(graph, STOP_TEXT)[0]["recipient"] == BSUID


def test_a_user_who_turns_on_a_username_mid_chain_is_still_the_same_user(app_config, graph, wasender,
                                                                          keypair):
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS="4s,1h")
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        # Before the username: Meta sends both the number and the BSUID.
        post(stack, by_username(say("hi"), BSUID, phone=PHONE), [user_contact(bsuid=BSUID, phone=PHONE)])
        token = stack.send(phone=PHONE)
        wait_for(lambda: len(graph.sent_messages()) == 1, message="the Flow message")
        stack.client().init(token)
        # Now a username user: the STOP carries no number. It is the same person's STOP.
        post(stack, by_username(say("STOP"), BSUID), username_only())
        assert contacts.opted_out(PHONE)
        skipped = lambda: [e for e in stack.sessions.timeline(token) if e["event"] == "recovery_skipped"]
        wait_for(skipped, timeout=20, message="the step to find the opt-out")
    # The confirmation went to the number we know (Meta: `to` when a phone is known).
    assert [m["to"] for m in texts(graph, STOP_TEXT)] == [PHONE]
    assert len(graph.sent_messages()) == 2


def test_131062_goes_to_the_fallback_path_and_asks_for_the_number(app_config, graph, wasender, keypair):
    # The Flow's template behaves like an authentication template: not for BSUID recipients.
    graph.bsuid_refused_templates = {"login_code"}
    cfg = stack_config(app_config, graph, wasender, FLOW_TEMPLATES={"member_check": ("login_code", "en_US")},
                       CONTACT_INFO_TEMPLATE="share_number:en_GB")
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        token = stack.send(phone=BSUID)
        wait_for(lambda: stack.sessions.get(token)["state"] == "failed", message="the send refused")
        timeline = stack.sessions.timeline(token)
        cases = fallback.pending(stack.redis)
        # The user taps the button: their own contact card comes back (origin contact_request).
        shared = by_username({"id": "wamid.shared1", "timestamp": "1749417000", "type": "contacts",
                              "origin": "contact_request",
                              "contacts": [{"vcard": "BEGIN:VCARD…",
                                            "phones": [{"phone": f"+{PHONE}"}]}]}, BSUID)
        post(stack, shared, username_only())
        assert contacts.resolve(BSUID, enrich=True).phone == PHONE
        again = stack.send(phone=BSUID)
        wait_for(lambda: len(graph.accepted()) == 2, message="the next Flow, to the number")
        assert stack.sessions.get(again)["phone"] == PHONE
    refused, asked = [(r.json(), status) for r, status in graph.answers][:2]
    assert (refused[1] == 400 and refused[0]["template"]["name"] == "login_code"
            and refused[0]["recipient"] == BSUID)
    assert asked == ({"messaging_product": "whatsapp", "recipient_type": "individual", "recipient": BSUID,
                      "type": "template", "template": {"name": "share_number", "language": {"code": "en_GB"}},
                      "biz_opaque_callback_data": asked[0]["biz_opaque_callback_data"]}, 200)
    assert graph.accepted()[1]["to"] == PHONE and "recipient" not in graph.accepted()[1]
    refusal = next(e for e in timeline if e["event"] == "send_refused")
    assert refusal["detail"].startswith("unreachable without a phone number")
    assert ("BSUID recipients not supported" in refusal["detail"]
            and "contact info request sent" in refusal["detail"])
    assert [(c["reason"], c["code"], c["to"], c["user_id"]) for c in cases] == [
        ("unreachable_no_phone", 131062, None, BSUID)]
    assert wasender.sent() == [] and wasender.matching("GET", "/api/status") == []


def test_a_bsuid_only_user_under_hybrid_never_goes_to_wasender(app_config, graph, wasender, keypair):
    # Outside the window, no template, no CONTACT_INFO_TEMPLATE: a phone user would get WASender.
    cfg = stack_config(app_config, graph, wasender, FOLLOWUP_CHANNEL="hybrid")
    with Stack(cfg, keypair) as stack:
        token = stack.send(phone=BSUID)
        wait_for(lambda: stack.sessions.get(token)["state"] == "failed", message="the send refused")
        refusal = next(e for e in stack.sessions.timeline(token) if e["event"] == "send_refused")
        cases = fallback.pending(stack.redis)
        # A phone user in the same situation does go to WASender (the control).
        other = stack.send(phone=PHONE)
        wait_for(lambda: len(wasender.sent()) == 1, message="the phone user's WASender text")
    assert refusal["detail"].startswith("unreachable without a phone number "
                                        "(cloud needs_template (code 131047)")
    assert "CONTACT_INFO_TEMPLATE" in refusal["detail"]
    assert [(c["reason"], c["user_id"]) for c in cases] == [("unreachable_no_phone", BSUID)]
    assert wasender.sent()[0]["to"] == f"+{PHONE}" and graph.sent_messages() == []
    assert other != token


def test_identifier_changes_move_the_record(app_config, graph, wasender, keypair):
    new_bsuid, newest = "US.99887766554433221100", "US.11223344556677889900"
    cfg = stack_config(app_config, graph, wasender)
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        post(stack, by_username(say("STOP"), BSUID), username_only())
        # The BSUID changed (August 2026: a system message with the previous one; no contacts).
        change = system_change(new_bsuid=new_bsuid, previous_bsuid=BSUID)
        post(stack, change, [], kind="identity")
        assert (contacts.opted_out(new_bsuid)
                and contacts.resolve(new_bsuid).key == contacts.resolve(BSUID).key)
        # The March 2026 shape: a user_id_update change.
        raw = body_of(user_id_update_change(new_bsuid, newest))
        resp = requests.post(f"{stack.server.url}/webhooks/whatsapp", data=raw,
                             headers=signed_headers(raw, APP_SECRET), timeout=5)
        assert resp.status_code == 200 and resp.json()["enqueued"] == 1
        wait_for(lambda: contacts.opted_out(newest), message="the user_id_update applied")
        # A number change: the record follows the new number; the old one is free for its next owner.
        post(stack, by_username(say("hi"), newest, phone=PHONE), [user_contact(bsuid=newest, phone=PHONE)])
        moved = system_change(kind="user_changed_number", old_phone=PHONE, new_phone="15550009999",
                              new_bsuid="US.55555555555555555555", previous_bsuid=newest)
        post(stack, moved, [], kind="identity")
        assert contacts.opted_out("15550009999") and contacts.opted_out("US.55555555555555555555")
        assert not contacts.opted_out(PHONE)
        assert contacts.resolve("US.55555555555555555555", enrich=True).phone == "15550009999"


def test_state_written_before_the_upgrade_is_still_found(app_config, graph, wasender, keypair, redis_client):
    # The old way: everything under fg:contact:<phone>; a session with only a `phone` field; a
    # STOP confirmation already sent (its effect key named by the phone); a job queued by the old
    # webhook parser (no identity attached).
    now = time.time()
    redis_client.hset(f"fg:contact:{PHONE}",
                      mapping={"last_inbound_at": f"{now - 60:.3f}", "opted_out": f"{now:.3f}",
                                                      "opt_out_channel": "cloud"})
    redis_client.zadd(f"fg:contact:{PHONE}:sessions", {"fg_legacytoken": now})
    redis_client.set(f"fg:effect:stop-{PHONE}", json.dumps({"channel": "cloud", "message_id": "wamid.old"}))
    cfg = stack_config(app_config, graph, wasender)
    with Stack(cfg, keypair) as stack:
        contacts = stack.app.extensions["contacts"]
        old_job = say("hello from before", user=PHONE)
        enqueue(stack.redis, "workers.inbound.record_inbound", old_job, "106540352242922", {},
                job_id=f"inbound-{digest(old_job['id'])}")
        wait_for(lambda: finished(stack, f"inbound-{digest(old_job['id'])}"), message="the old job")
        # First webhook with a BSUID, then the username user without a number.
        post(stack, by_username(say("hi"), BSUID, phone=PHONE), [user_contact(bsuid=BSUID, phone=PHONE)])
        post(stack, by_username(say("STOP"), BSUID), username_only())
        assert contacts.resolve(BSUID).key == PHONE  # the old record, where it was
        assert contacts.opted_out(BSUID) and contacts.in_window(BSUID)
        assert "fg_legacytoken" in contacts.recent_sessions(BSUID)
        assert [t["text"] for t in contacts.recent_texts(BSUID)] == ["STOP", "hi", "hello from before"]
    assert texts(graph, STOP_TEXT) == []  # confirmed once already, before the upgrade


@pytest.mark.parametrize("field", ["parent_recipient_user_id", "recipient_parent_user_id"])
def test_a_failed_status_without_contacts_still_names_the_user(app_config, graph, wasender, keypair, field):
    # Failed statuses omit `contacts`; Meta spells the parent BSUID both ways.
    cfg = stack_config(app_config, graph, wasender)
    with Stack(cfg, keypair) as stack:
        failed = {**status("wamid.gone1", "failed", code=131026), field: "US.ENT.11815799212886844830"}
        del failed["recipient_id"]
        failed["recipient_user_id"] = BSUID
        assert stack.whatsapp(statuses=[failed], contacts=[])["enqueued"] == 1
        wait_for(lambda: fallback.pending(stack.redis), message="the failed status handed over")
        case = fallback.pending(stack.redis)[0]
    assert ((case["reason"], case["to"], case["user_id"], case["code"])
            == ("failed_status", None, BSUID, 131026))


def test_a_confirmation_refused_with_131062_hands_the_user_over_once(app_config, graph, wasender, keypair):
    cfg = stack_config(app_config, graph, wasender, CONTACT_INFO_TEMPLATE="share_number")
    with Stack(cfg, keypair) as stack:
        graph.fail_next(400, graph_error(131062, "Business-scoped User ID (BSUID) recipients are not "
                                                 "supported for this message."))
        done = by_username(completion(token="fg_elsewhere"), BSUID)
        post(stack, done, username_only(), kind="completion")
        cases = fallback.pending(stack.redis)
        timeline = stack.sessions.timeline("fg_elsewhere")
    refused, asked = [(r.json(), status) for r, status in graph.answers]
    assert refused[1] == 400 and refused[0]["recipient"] == BSUID and refused[0]["type"] == "text"
    assert asked[1] == 200 and asked[0]["template"] == {"name": "share_number", "language": {"code": "en_US"}}
    assert [(c["reason"], c["code"], c["user_id"])
            for c in cases] == [("unreachable_no_phone", 131062, BSUID)]
    assert [e["event"] for e in timeline if e["event"] in ("confirmation_failed", "unreachable")] == [
        "confirmation_failed", "unreachable"]
    assert wasender.sent() == []
