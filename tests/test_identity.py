"""One identity per user: what the webhook shapes say (Meta's own examples, docs/meta-facts.md) and
how the contact records follow the person in a real Redis."""
from __future__ import annotations

import json

import pytest

from flows import identity
from stores.contacts import Contacts, alias_key
from flows.identity import User
from flows.webhook import COMPLETION, IDENTITY, INBOUND, STATUS, parse
from standins.meta_webhooks import (by_username, completion, envelope, messages_change, status, system_change,
                                    text_message, user_contact, user_id_update_change)

BSUID, PARENT = "US.13491208655302741918", "US.11815799212886844830"


def meta_incoming_username_example() -> dict:
    """Meta's "Business-scoped user IDs" page: an incoming text from a username user, parent BSUIDs
    enabled, no phone number shareable."""
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson", "username": "@realsheenanelson"},
                          "user_id": BSUID, "parent_user_id": PARENT}],
            "messages": [{"from_user_id": BSUID, "from_parent_user_id": PARENT,
                          "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                          "timestamp": "1749416383", "type": "text",
                          "text": {"body": "Does it come in another color?"}}]}


def test_a_username_users_message_names_them_by_bsuid():
    value = meta_incoming_username_example()
    user = identity.from_message(value, value["messages"][0])
    assert user == User(bsuid=BSUID, parent_bsuid=PARENT, username="@realsheenanelson")
    assert user.address() == {"recipient": BSUID}


def test_a_message_from_before_bsuids_names_the_phone():
    value = messages_change([text_message()])["value"]
    assert identity.from_message(value, value["messages"][0]) == User(phone="16505551234")


def test_the_matching_contact_completes_the_sender():
    message = by_username(text_message(), BSUID, phone="16505551234")
    value = messages_change([message], contacts=[
        user_contact(bsuid="US.1", phone="19990000000"),
        user_contact(bsuid=BSUID, phone="16505551234", username="@p")])["value"]
    assert identity.from_message(value, message) == User(phone="16505551234", bsuid=BSUID, username="@p")


def test_statuses_name_the_recipient_by_either_parent_spelling():
    # Meta's delivered example: sent to the BSUID, phone not shareable (no wa_id, no recipient_id).
    delivered = {"id": "wamid.x", "status": "delivered", "timestamp": "1750030073",
                 "recipient_user_id": BSUID, "parent_user_id": PARENT}
    value = {"contacts": [{"profile": {"name": "Pablo M.", "username": "@pablomorales"},
                           "user_id": BSUID, "parent_user_id": PARENT}], "statuses": [delivered]}
    assert identity.from_status(value, delivered) == User(bsuid=BSUID, parent_bsuid=PARENT,
                                                          username="@pablomorales")
    for field in ("parent_recipient_user_id", "recipient_parent_user_id"):
        failed = {"id": "wamid.y", "status": "failed", field: PARENT}  # failed: no contacts at all
        assert identity.from_status({"statuses": [failed]}, failed) == User(parent_bsuid=PARENT)
    group = {"id": "wamid.z", "status": "read", "recipient_id": "120363040000000000@g.us",
             "recipient_type": "group"}
    assert identity.from_status({}, group) is None


def test_identity_changes_from_system_messages_and_user_id_update():
    changed = system_change(kind="user_changed_number", old_phone="16505551234", new_phone="16505559999",
                            new_bsuid="US.2", previous_bsuid=BSUID)
    assert identity.identity_changes({}, changed) == [
        (User(phone="16505551234", bsuid=BSUID), User(phone="16505559999", bsuid="US.2"))]
    update = user_id_update_change(BSUID, "US.3", phone="16505551234")["value"]
    assert identity.identity_changes(update) == [
        (User(phone="16505551234", bsuid=BSUID), User(phone="16505551234", bsuid="US.3"))]
    assert identity.identity_changes({"user_id_update": ["junk", {"user_id": "nope"}]}) == []


def test_only_a_contact_request_share_is_taken_as_the_users_number():
    card = {"vcard": "BEGIN:VCARD", "phones": [{"phone": "+1 650 555 1234"}]}
    shared = {"id": "w", "type": "contacts", "origin": "contact_request", "contacts": [card]}
    assert identity.shared_phone(shared) == "16505551234"
    assert identity.shared_phone({**shared, "origin": "other"}) is None  # someone else's card
    assert identity.shared_phone({**shared, "contacts": "junk"}) is None


def test_parse_takes_a_sender_by_bsuid_and_refuses_a_message_with_none():
    hello = by_username(text_message(), BSUID)
    done = by_username(completion(), BSUID)
    body = envelope(messages_change([hello, done], [status("wamid.s")], contacts=[user_contact(bsuid=BSUID)]))
    items = parse(json.dumps(body).encode()).items
    assert [i.kind for i in items] == [INBOUND, COMPLETION, STATUS]
    assert items[0].extra == {"user": {"bsuid": BSUID}}
    nobody = {k: v for k, v in text_message().items() if k != "from"}
    # One event with no sender at all is that event's problem: a dead letter, never the batch's.
    parsed = parse(json.dumps(envelope(messages_change([nobody, hello], contacts=[]))).encode())
    assert [i.kind for i in parsed.items] == [INBOUND]
    assert [r.reason for r in parsed.rejects] == ["message without a sender (from or from_user_id)"]


def test_parse_turns_identifier_changes_into_their_own_items():
    raw = json.dumps(envelope(
        messages_change([system_change(new_bsuid="US.2", previous_bsuid=BSUID)], contacts=[]),
        user_id_update_change(BSUID, "US.3"))).encode()
    parsed = parse(raw)
    items = parsed.items
    assert [i.kind for i in items] == [IDENTITY, IDENTITY] and parsed.ignored == 0
    assert items[1].payload["after"] == {"bsuid": "US.3"}


# --- the records, in a real Redis ---------------------------------------------------------------

def test_learning_both_identifiers_folds_two_records_into_one(redis_client):
    contacts = Contacts(redis_client)
    contacts.inbound("16505551234", "m1", at=1000.0, text="hi")
    contacts.add_session("16505551234", "fg_phone", at=1000.0)
    contacts.inbound(BSUID, "m2", at=2000.0, text="STOP")
    contacts.opt_out(BSUID, "cloud", at=2000.0)
    contacts.record_completion(BSUID, "member_check", at=1500.0)
    contacts.add_session(BSUID, "fg_bsuid", at=2000.0)
    user = contacts.learn(User(phone="16505551234", bsuid=BSUID, username="@p"))
    assert user.key == "16505551234" and user.username == "@p"  # the number's record: as before
    assert contacts.resolve(BSUID).key == user.key
    assert contacts.opted_out("16505551234") and contacts.last_inbound_at("16505551234") == 2000.0
    assert contacts.last_completion("16505551234", "member_check") == 1500.0
    assert contacts.recent_sessions(BSUID) == ["fg_bsuid", "fg_phone"]
    assert [t["text"] for t in contacts.recent_texts(BSUID)] == ["STOP", "hi"]
    assert not redis_client.exists(f"fg:contact:b:{BSUID}")  # folded, not copied
    assert contacts.learn(User(phone="16505551234", bsuid=BSUID)).key == user.key  # again: no change


def test_a_bsuid_first_user_keeps_their_record_when_a_new_number_appears(redis_client):
    contacts = Contacts(redis_client)
    contacts.opt_out(BSUID, "cloud")
    user = contacts.learn(User(phone="16505550000", bsuid=BSUID))
    assert user.key == f"b:{BSUID}" and contacts.opted_out("16505550000")
    assert redis_client.get(alias_key("p", "16505550000")) == f"b:{BSUID}".encode()


def test_resolving_never_writes(redis_client):
    contacts = Contacts(redis_client)
    assert contacts.resolve(User(bsuid=BSUID, phone="1650")).key == "1650"
    assert contacts.resolve(BSUID).key == f"b:{BSUID}"
    assert redis_client.keys("*") == []
