"""Hostile requests through the real gunicorn (gunicorn.conf.py) over raw HTTP on loopback.

Chunked bodies past a route's limit: gunicorn ends a chunked body itself, and werkzeug's cap used
to stop reading quietly at the limit, so the first MiB of a body was processed as if whole (a
signed ping with any unsigned tail answered 200). Over the limit is 413 whatever the framing, on
every route that reads a body; exactly the limit is still served. And the decrypted-request
classes (text that cannot be encoded, fields of the wrong type) through the real server: each is
400, and the server's own output never shows a traceback or a handler error.
"""
from __future__ import annotations

import http.client
import json
import re

import pytest

from conftest import APP_SECRET, served_settings
from flows import crypto, keys
from flows.signing import sign
from hostile import WRONG_TYPES, escaped_json, seal_plaintext
from procs import LoggedGunicorn
from standins.meta_webhooks import envelope

WASENDER_SECRET = "ws-hostile-secret"
API_TOKEN = "api-hostile-token"
MIB = 1024 * 1024
FLOW_LIMIT = MIB  # FLOW_MAX_REQUEST_BYTES's default
WEBHOOK_LIMIT = 3 * MIB  # Meta's, and the app's MAX_CONTENT_LENGTH
TAIL = 512 * 1024


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            chunked: bool = False, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    """One request on a fresh connection; ``chunked`` sends the body with Transfer-Encoding:
    chunked (no Content-Length), as a proxy or a streaming client does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if not chunked:
            conn.request(method, path, body=body, headers=headers or {})
        else:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in {**(headers or {}), "Transfer-Encoding": "chunked"}.items():
                conn.putheader(name, value)
            conn.endheaders()
            try:
                for i in range(0, len(body), chunk):
                    piece = body[i:i + chunk]
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered before the whole body was sent: read that answer
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(redis_server, keypair):
    with LoggedGunicorn(APP_ENV="production", REDIS_URL=redis_server.url, WEB_CONCURRENCY=1,
                        FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"), WHATSAPP_APP_SECRET=APP_SECRET,
                        WASENDER_WEBHOOK_SECRET=WASENDER_SECRET, API_TOKEN=API_TOKEN,
                        **served_settings()) as gunicorn:
        yield gunicorn
    assert not problems(gunicorn.output), gunicorn.output[-3000:]


def problems(output: str) -> list[str]:
    """Lines of the server's output that show a crash or an error hidden behind an answer."""
    return [line for line in output.splitlines() if "Traceback" in line or re.search(r"\bERROR\b", line)]


def padded(body: bytes, size: int) -> bytes:
    """``body`` with JSON whitespace after it, exactly ``size`` bytes: still the same JSON."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _ping(keypair, size: int) -> tuple[bytes, crypto.SealedRequest]:
    sealed = crypto.encrypt_request({"version": "3.0", "action": "ping"}, keys.load_public_key(keypair[1]))
    return padded(json.dumps(sealed.body).encode(), size), sealed


def test_a_signed_ping_with_an_unsigned_chunked_tail_past_the_limit_is_413(server, keypair):
    raw, sealed = _ping(keypair, FLOW_LIMIT)
    headers = {"X-Hub-Signature-256": sign(APP_SECRET, raw), "Content-Type": "application/json"}
    # Exactly the limit, chunked: served (the limit is exact, chunked bodies are not refused).
    status, body = request(server.port, "POST", "/flows/member_check", raw, headers, chunked=True)
    assert status == 200
    assert crypto.decrypt_reply(body.decode(), sealed.aes_key, sealed.iv) == {"data": {"status": "active"}}
    # The same signed MiB with 512 KB behind it that no signature covers: refused.
    status, _ = request(server.port, "POST", "/flows/member_check", raw + b" " * TAIL, headers, chunked=True)
    assert status == 413
    status, _ = request(server.port, "POST", "/flows/member_check", raw + b" ", headers, chunked=True)
    assert status == 413  # one byte over is over
    status, _ = request(server.port, "POST", "/flows/member_check", raw + b" " * TAIL, headers)
    assert status == 413  # and with Content-Length, as before


@pytest.mark.parametrize("route", ["whatsapp", "wasender", "send_api"])
def test_every_route_that_reads_a_body_refuses_a_chunked_body_past_its_limit(server, route):
    if route == "whatsapp":
        path, body = ("/webhooks/whatsapp",
                      json.dumps(envelope({"field": "account_update", "value": {}})).encode())
        headers = {"X-Hub-Signature-256": sign(APP_SECRET, padded(body, WEBHOOK_LIMIT))}
        ok = 200
    elif route == "wasender":
        path, body = "/webhooks/wasender", json.dumps({"event": "qrcode.updated", "data": {}}).encode()
        headers, ok = {"X-Webhook-Signature": WASENDER_SECRET}, 200
    else:
        path, body = "/api/flows/member_check/send", json.dumps({"to": "+15550001234"}).encode()
        headers, ok = {"Authorization": f"Bearer {API_TOKEN}"}, 202
    headers["Content-Type"] = "application/json"
    whole = padded(body, WEBHOOK_LIMIT)
    status, answer = request(server.port, "POST", path, whole, headers, chunked=True)
    assert status == ok, answer[:300]
    status, answer = request(server.port, "POST", path, whole + b" " * TAIL, headers, chunked=True)
    assert status == 413, answer[:300]


# --- the decrypted request's classes, through the real server ----------------------------------

BASE = {"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP", "flow_token": "tok-gh",
        "data": {"member_id": "MEM123"}}
NOTE = {**BASE, "data": {"error": "payload-schema-error", "error_message": "bad reply"}}
CASES = (
    [("surrogate in " + place, {**BASE, place: "a\ud800"}) for place in ("flow_token", "screen", "version")]
    + [("surrogate in a data value", {**BASE, "data": {"member_id": "\udfff"}}),
       ("surrogate in a data key", {**BASE, "data": {"\ud83d": 1}}),
       ("surrogate in an error notification's text",
        {**NOTE, "data": {**NOTE["data"], "error_message": "\udc00"}}),
       ("surrogate in an INIT's token", {"version": "3.0", "action": "INIT", "flow_token": "\ud800"})]
    + [(f"{place}={value!r}", {**BASE, place: value})
       for place in ("action", "version", "screen", "flow_token")
       for value in WRONG_TYPES]
    + [(f"data={value!r}", {**BASE, "data": value}) for value in WRONG_TYPES if not isinstance(value, dict)]
    + [(f"data.{key}={value!r}", {**NOTE, "data": {**NOTE["data"], key: value}})
       for key in ("error", "error_key", "error_message") for value in WRONG_TYPES]
)


def test_unencodable_text_and_wrong_types_are_400_through_gunicorn(server, keypair):
    public = keys.load_public_key(keypair[1])
    seen = len(server.text())
    answers = {}
    for name, payload in CASES:
        raw, _, _ = seal_plaintext(escaped_json(payload), public)
        status, body = request(server.port, "POST", "/flows/member_check", raw,
                               {"X-Hub-Signature-256": sign(APP_SECRET, raw)})
        answers[name] = (status, body.decode(errors="replace"))
    assert {name: a for name, a in answers.items() if a[0] != 400} == {}
    assert not problems(server.text()[seen:]), server.text()[-3000:]
