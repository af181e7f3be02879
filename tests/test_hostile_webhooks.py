"""Hostile input on both webhooks (POST /webhooks/whatsapp, POST /webhooks/wasender), by hypothesis.

Whatever arrives, the answer is 400/401/403/413 — or 200 for a well-formed envelope — never a 500,
and neither the body nor the log carries a traceback or a secret. Every string may hold a lone
surrogate (``"\ud800"``: valid JSON, not encodable text). A 200 means every event of the body is
in Redis: the properties count the jobs and dead letters there against the events posted.
``HYPOTHESIS_PROFILE=chaos`` (``make chaos``) runs 10,000 cases per property.
"""
from __future__ import annotations

import copy
import itertools
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from conftest import APP_SECRET
from flows import identity
from flows.signing import HEADER, sign
from messaging.wasender import STATUS_KEY
from workers.deadletters import INDEX as DEAD_LETTERS
from workers.queues import HIGH, QUEUES

WASENDER_SECRET = "wasender-webhook-secret-5e6f"
API_TOKEN = "api-token-hostile-7a8b"
SECRETS = (APP_SECRET, WASENDER_SECRET, API_TOKEN)
REJECTIONS = {400, 401, 403, 413}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                     HealthCheck.too_slow])

# Lone surrogates (and surrogate pairs split apart) in any text: json.dumps writes them as
# "\udXXX" escapes, which json.loads reads back as unencodable strings.
LONE = st.sampled_from(["\ud800", "\udfff", "\udc80", "\ud83d"])
texts = (st.text(max_size=40)
         | st.text(alphabet=st.characters(categories=["Cs", "Ll", "Nd"]), min_size=1, max_size=12)
         | st.builds(lambda a, lone, b: a + lone + b, st.text(max_size=8), LONE, st.text(max_size=8)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
strings = texts | st.sampled_from(["", "wamid.X", "15550001234", "interactive", "nfm_reply"])


def mostly(good, bad):
    """``good`` seven times in eight, so that a body often gets deep enough to reach every rule
    (``one_of`` would pick each side about as often)."""
    return st.integers(0, 7).flatmap(lambda pick: bad if pick == 0 else good)


# Envelopes close enough to Meta's to get past the first checks, with every part possibly wrong.
messages = st.fixed_dictionaries({"id": mostly(strings, json_values), "from": mostly(strings, json_values),
                                  "type": mostly(st.sampled_from(["text", "interactive", "button"]),
                                                 json_values)},
                                 optional={"interactive": json_values | st.fixed_dictionaries({
                                     "type": st.just("nfm_reply") | json_values,
                                     "nfm_reply": json_values | st.fixed_dictionaries(
                                         {"response_json": strings | json_values})}),
                                     "text": json_values, "timestamp": json_values, "user_id": strings,
                                     "context": json_values | st.fixed_dictionaries({"id": strings})})
statuses = st.fixed_dictionaries({"id": mostly(strings, json_values), "status": mostly(strings, json_values)},
                                 optional={"errors": json_values, "recipient_id": json_values})
values = st.fixed_dictionaries({}, optional={
    "messages": mostly(st.lists(messages, max_size=3), json_values),
    "statuses": mostly(st.lists(statuses, max_size=3), json_values),
    "metadata": json_values | st.fixed_dictionaries({"phone_number_id": strings}),
    "event": mostly(strings, json_values)})
changes = st.fixed_dictionaries({"field": mostly(st.sampled_from(["messages", "flows", "account_update"]),
                                                 json_values),
                                 "value": mostly(values, json_values)})
entries = st.fixed_dictionaries({"id": strings,
                                 "changes": mostly(st.lists(changes, max_size=3), json_values)},
                                optional={"time": json_values})
envelopes = st.fixed_dictionaries({
    "object": mostly(st.just("whatsapp_business_account"), json_values),
    "entry": mostly(st.lists(mostly(entries, json_values), max_size=3), json_values)})

senders = mostly(st.sampled_from(["15550001234@s.whatsapp.net", "+15550001234", "15550001234"]),
                 strings | st.sampled_from(["15550001234@lid", "1203630@g.us", "@s.whatsapp.net"]))
wasender_messages = st.fixed_dictionaries({
    "key": mostly(st.fixed_dictionaries({"id": mostly(strings, json_values)}, optional={
        "fromMe": mostly(st.just(False), json_values), "remoteJid": mostly(senders, json_values),
        "cleanedSenderPn": mostly(senders, json_values), "senderPn": mostly(senders, json_values)}),
                  json_values)},
    optional={"messageBody": json_values, "message": json_values})
wasender_events = st.fixed_dictionaries({
    "event": mostly(st.sampled_from(["messages.upsert", "messages.received", "messages-personal.received",
                                     "session.status", "qrcode.updated"]), json_values),
    "data": mostly(st.fixed_dictionaries({}, optional={
        "messages": mostly(wasender_messages | st.lists(wasender_messages, max_size=3), json_values),
        "status": mostly(strings, json_values)}), json_values)})


@pytest.fixture
def app(app_config):
    return create_app({**app_config, "WASENDER_WEBHOOK_SECRET": WASENDER_SECRET, "API_TOKEN": API_TOKEN})


class Probe:
    """Posts through the real app in process (WSGI): thousands of cases must stay fast."""

    def __init__(self, app, caplog):
        caplog.set_level(logging.DEBUG)
        self.client = app.test_client()
        self.caplog = caplog

    def check(self, resp):
        text = resp.get_data(as_text=True)
        assert resp.status_code != 500, text
        assert "Traceback" not in text and "Traceback" not in self.caplog.text
        for secret in SECRETS:
            assert secret not in text and secret not in self.caplog.text
        return resp.status_code

    def cloud(self, raw: bytes, signature: str | None = "sign") -> int:
        headers = ({} if signature is None
                   else {HEADER: sign(APP_SECRET, raw) if signature == "sign" else signature})
        return self.check(self.client.post("/webhooks/whatsapp", data=raw, headers=headers,
                                           content_type="application/json"))

    def wasender(self, raw: bytes, signature: str | None = WASENDER_SECRET) -> int:
        headers = {} if signature is None else {"X-Webhook-Signature": signature}
        return self.check(self.client.post("/webhooks/wasender", data=raw, headers=headers,
                                           content_type="application/json"))


def dumps(value) -> bytes:
    return json.dumps(value).encode()


# --- the Cloud API webhook -----------------------------------------------------------------------

@settings(**SETTINGS)
@given(raw=st.binary(max_size=2000))
def test_cloud_random_bytes(app, caplog, raw):
    assert Probe(app, caplog).cloud(raw) in REJECTIONS


@settings(**SETTINGS)
@given(body=json_values)
def test_cloud_random_json(app, caplog, body):
    assert Probe(app, caplog).cloud(dumps(body)) in REJECTIONS


def stored(redis) -> tuple[int, int]:
    """(jobs waiting in the queues, dead letters): where a 200 says the events are."""
    return sum(redis.llen(f"rq:queue:{name}") for name in QUEUES), redis.zcard(DEAD_LETTERS)


def canon(value) -> str:
    return json.dumps(value, sort_keys=True)


def text(value) -> bool:
    """What an id or a phone number must be: a non-empty string that can be encoded."""
    if not isinstance(value, str) or not value:
        return False
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def distinct(body: dict) -> dict:
    """Events made distinct where Meta's are (each message its own wamid, each entry its own id),
    so that the count of what is stored can be told from what was posted."""
    body, n = copy.deepcopy(body), itertools.count()
    entries = body.get("entry") if isinstance(body.get("entry"), list) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        entry["id"] = f"e{next(n)}-{entry.get('id')}"
        for change in entry.get("changes") if isinstance(entry.get("changes"), list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            value["_n"] = next(n)  # a marker: no two values (hence no two flows events) alike
            for name in ("messages", "statuses"):
                for element in value.get(name) if isinstance(value.get(name), list) else []:
                    if isinstance(element, dict) and isinstance(element.get("id"), str) and element["id"]:
                        element["id"] = f"wamid.u{next(n)}.{element['id']}"
    return body


def has_sender(value: dict, message: dict) -> bool:
    """A ``system`` message (an identifier changed) needs none; any other needs a sender that is
    valid text where given, found by flows.identity (``from``, ``from_user_id``, or the one
    ``contacts[]`` entry; its rules are tests/test_identity.py's subject, not this property's)."""
    if message["type"] == "system":
        return True
    if any(isinstance(message.get(k), str) and message[k] and not text(message[k])
           for k in ("from", "from_user_id")):
        return False
    return identity.from_message(value, message) is not None


def cloud_expected(body: dict) -> tuple[int, int] | None:
    """(jobs, dead letters) a distinct body leaves in an empty Redis; None: not an envelope (400).
    The rules, written out: messages need id and type (``text``) and a sender (``has_sender``),
    statuses id and status; flows events an event; anything else in an entry is one dead letter
    per event."""
    if body.get("object") != "whatsapp_business_account" or not isinstance(body.get("entry"), list):
        return None
    jobs, dead = 0, set()
    for entry in body["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            dead.add(("entry", canon(entry)))
            continue
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str) \
                    or not isinstance(change.get("value"), dict):
                dead.add(("change", entry["id"], canon(change)))
                continue
            value = change["value"]
            if change["field"] == "flows":
                if isinstance(value.get("event"), str):
                    jobs += 1
                else:
                    dead.add(("flows", value["_n"]))
            if change["field"] != "messages":
                continue
            for name, required in (("messages", ("id", "type")), ("statuses", ("id", "status"))):
                if name not in value:
                    continue
                if not isinstance(value[name], list):
                    dead.add((name, value["_n"]))
                    continue
                for element in value[name]:
                    if isinstance(element, dict) and all(text(element.get(k)) for k in required) \
                            and (name == "statuses" or has_sender(value, element)):
                        jobs += 1
                    else:
                        dead.add((name, value["_n"], canon(element)))
    return jobs, len(dead)


@settings(**SETTINGS)
@given(body=envelopes)
def test_cloud_envelopes_every_event_is_enqueued_or_dead_lettered(app, caplog, body):
    redis = app.extensions["redis"]
    redis.flushdb()
    body = json.loads(dumps(distinct(body)))  # as the server reads it ("\ud800\udc00" is one character)
    expected = cloud_expected(body)
    status = Probe(app, caplog).cloud(dumps(body))
    if expected is None:
        assert status == 400
        assert stored(redis) == (0, 0)
    else:
        # One malformed event never fails the batch: 200, and each event is a job or a dead letter.
        assert status == 200
        assert stored(redis) == expected


@pytest.mark.parametrize("route", ["cloud", "wasender"])
@settings(**SETTINGS)
@given(depth=st.integers(min_value=1, max_value=100_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_deep_json(app, caplog, route, depth, opener):
    closer = b"]" if opener == b"[" else b"}"
    assert getattr(Probe(app, caplog), route)(opener * depth + closer * depth) == 400


@settings(**SETTINGS)
@given(text=st.text(max_size=40), junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b)))
def test_cloud_invalid_utf8(app, caplog, text, junk):
    raw = b'{"object": "whatsapp_business_account", "entry": [{"id": "' + junk + text.encode() + b'"}]}'
    assert Probe(app, caplog).cloud(raw) == 400


@settings(**SETTINGS)
@given(header=st.text(max_size=90).filter(lambda h: h.isascii() and h.isprintable()), body=envelopes)
def test_cloud_bad_and_missing_signatures(app, caplog, header, body):
    raw = dumps(body)
    probe = Probe(app, caplog)
    assert probe.cloud(raw, signature=None) == 401
    expected = sign(APP_SECRET, raw)
    if header.strip() and header != expected:
        assert probe.cloud(raw, signature=header) == 403
    # A signature made with another secret, or over other bytes, is wrong too.
    assert probe.cloud(raw, signature=sign("not-the-secret", raw)) == 403
    assert probe.cloud(raw + b" ", signature=expected) == 403


def test_cloud_huge_strings_and_bodies(app, caplog):
    probe = Probe(app, caplog)
    text = {"from": "15550001234", "id": "wamid.huge", "type": "text", "text": {"body": "x" * 2_000_000}}
    envelope = {"object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messages": [text]}}]}]}
    assert probe.cloud(dumps(envelope)) == 200  # under Meta's 3 MB: stored like any message
    assert probe.cloud(b" " * (3 * 1024 * 1024 + 1)) == 413
    assert probe.cloud(dumps({"object": "x" * (4 * 1024 * 1024)})) == 413


# --- the WASender webhook ------------------------------------------------------------------------

@settings(**SETTINGS)
@given(raw=st.binary(max_size=2000))
def test_wasender_random_bytes(app, caplog, raw):
    assert Probe(app, caplog).wasender(raw) in REJECTIONS


@settings(**SETTINGS)
@given(body=json_values)
def test_wasender_random_json(app, caplog, body):
    assert Probe(app, caplog).wasender(dumps(body)) in REJECTIONS | {200}


def wasender_distinct(body: dict) -> dict:
    body, n = copy.deepcopy(body), itertools.count()
    data = body.get("data")
    if isinstance(data, dict):
        messages = data.get("messages")
        for m in [messages] if isinstance(messages, dict) else messages if isinstance(messages, list) else []:
            key = m.get("key") if isinstance(m, dict) else None
            if isinstance(key, dict) and isinstance(key.get("id"), str) and key["id"]:
                key["id"] = f"u{next(n)}.{key['id']}"
            elif isinstance(key, dict) and type(key.get("id")) is int:
                key["id"] = key["id"] * 1000 + next(n)
    return body


def wasender_expected(body) -> tuple[int, int, bool] | None:
    """(jobs, dead letters, session status recorded) in an empty Redis; None: 400. A message is
    taken with a key id (text or a number) and a sender (text) with a phone number; one from us
    (fromMe) or from a group is not for us; anything else is a dead letter."""
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        return None
    event, data = body["event"], body.get("data")
    if event == "session.status":
        ok = isinstance(data, dict) and isinstance(data.get("status"), str)
        return 0, 0 if ok else 1, ok
    if event not in ("messages.upsert", "messages.received", "messages-personal.received"):
        return 0, 0, False
    messages = data.get("messages") if isinstance(data, dict) else None
    messages = [messages] if isinstance(messages, dict) else messages
    if not isinstance(messages, list):
        return 0, 1, False
    jobs, dead = 0, set()
    for m in messages:
        key = m.get("key") if isinstance(m, dict) else None
        if isinstance(key, dict) and key.get("fromMe"):
            continue
        sender = (key.get("cleanedSenderPn") or key.get("senderPn") or key.get("remoteJid") or ""
                  ) if isinstance(key, dict) else None
        if isinstance(sender, str) and sender.endswith("@g.us"):
            continue
        key_id = key.get("id") if isinstance(key, dict) else None
        good_id = text(key_id) or (isinstance(key_id, int) and not isinstance(key_id, bool))
        if good_id and text(sender) and not sender.endswith("@lid") \
                and any(c.isdecimal() for c in sender.split("@", 1)[0]):
            jobs += 1
        else:
            dead.add(canon(m))
    return jobs, len(dead), False


@settings(**SETTINGS)
@given(body=wasender_events)
def test_wasender_events_every_event_is_enqueued_or_dead_lettered(app, caplog, body):
    redis = app.extensions["redis"]
    redis.flushdb()
    body = json.loads(dumps(wasender_distinct(body)))
    expected = wasender_expected(body)
    status = Probe(app, caplog).wasender(dumps(body))
    if expected is None:
        assert status == 400
    else:
        jobs, dead, recorded = expected
        assert status == 200
        assert (redis.llen(f"rq:queue:{HIGH}"), redis.zcard(DEAD_LETTERS)) == (jobs, dead)
        assert redis.exists(STATUS_KEY) == recorded


@settings(**SETTINGS)
@given(junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b)))
def test_wasender_invalid_utf8(app, caplog, junk):
    assert Probe(app, caplog).wasender(b'{"event": "messages.upsert", "data": "' + junk + b'"}') == 400


@settings(**SETTINGS)
@given(header=st.text(max_size=60).filter(lambda h: h.isascii() and h.isprintable()), body=wasender_events)
def test_wasender_bad_and_missing_signatures(app, caplog, header, body):
    probe = Probe(app, caplog)
    assert probe.wasender(dumps(body), signature=None) == 401
    if header != WASENDER_SECRET:
        assert probe.wasender(dumps(body), signature=header) in {401, 403}


@pytest.mark.parametrize("route", ["cloud", "wasender"])
def test_encoded_lone_surrogates_are_not_utf8(app, caplog, route):
    # Found by the 10,000-case run: json.loads(bytes) accepted b"\xed\xa0\x80" (a surrogate).
    raw = (b'{"object": "whatsapp_business_account", "event": "messages.upsert", '
           b'"entry": [], "data": "\xed\xa0\x80"}')
    assert getattr(Probe(app, caplog), route)(raw) == 400


@pytest.mark.parametrize("message", ["hi", 7, ["x"], True])
def test_wasender_message_of_any_type(app, caplog, message):
    body = {"event": "messages.upsert", "data": {"messages": {
        "key": {"id": "ABC", "remoteJid": "15550001234@s.whatsapp.net"}, "message": message}}}
    assert Probe(app, caplog).wasender(dumps(body)) == 200  # was a 500: str has no .get


def test_wasender_huge_body(app, caplog):
    probe = Probe(app, caplog)
    assert probe.wasender(b" " * (3 * 1024 * 1024 + 1)) == 413


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
        return True
    except UnicodeDecodeError:
        return False
