"""The least any Flow endpoint can do under this gunicorn: a bare WSGI callable (no Flask, no
Redis, no signature check) that unwraps the key, decrypts, and answers a fixed reply.

Served by the same gunicorn.conf.py as Flowgate and pywa (``bench.floor_app:app``). Its CPU per
request is the least *any* Python endpoint spends on this server and machine (the key unwrap, the
AES, and gunicorn parsing the request and writing the reply): bench.endpoint reports Flowgate's
CPU per request as a multiple of it (aim ≤ 1.3 for exchange, ≤ 1.1 for ping).
"""
from __future__ import annotations

import json

import config
from flows import keys
from flows.crypto import DecryptionError, decrypt_request, flip_iv, json_bytes, seal

RING = keys.KeyRing(keys.load_private_key(config.load()["FLOW_PRIVATE_KEY"]))
PING = json_bytes({"data": {"status": "active"}})
# The screen Flowgate and pywa answer for MEMBER_LOOKUP with a valid ID (bench.endpoint checks it).
CONFIRM = json_bytes({"screen": "CONFIRM", "data": {"member_id": "MEM123", "member_name": "Ana Silva",
                                                    "tier": "Gold"}})


def app(environ, start_response):
    if environ["PATH_INFO"] == "/health":  # what the benchmark polls before it starts
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        envelope = decrypt_request(json.loads(environ["wsgi.input"].read(length)), RING)
    except (ValueError, KeyError, DecryptionError):
        start_response("421 Misdirected Request", [("Content-Type", "text/plain")])
        return [b""]
    reply = PING if envelope.payload.get("action") == "ping" else CONFIRM
    body = seal(reply, envelope.aes_key, flip_iv(envelope.iv)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
