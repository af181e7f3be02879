"""A loopback Graph API: messages and the business encryption key, with Meta's error shapes."""
from __future__ import annotations

import itertools
import json
import random
import threading
import time

from flask import Response, request

from standins import StandIn

ACCESS_TOKEN = "test-graph-token"


def graph_error(code: int, message: str = "error", details: str = "") -> dict:
    """The body Meta returns: {"error": {"message", "type", "code", "error_data", "fbtrace_id"}}."""
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details or message},
                      "fbtrace_id": "AbCdEf123"}}


class GraphStandIn(StandIn):
    def __init__(self, access_token: str = ACCESS_TOKEN):
        self.access_token = access_token
        self.public_keys: dict[str, str] = {}  # phone number id → uploaded PEM
        self._ids = itertools.count(1)
        self._chaos: tuple[random.Random, float, float] | None = None
        self._chaos_lock = threading.Lock()
        self.answers: list[tuple[object, int]] = []  # (Recorded, status) of every messages POST
        super().__init__()

    def chaos(self, seed: int, retryable: float = 0.30, permanent: float = 0.05,
              latency: tuple[float, float] = (0.0, 0.0)) -> None:
        """Fail that share of message sends at random: retryable ones as Meta answers them (131000
        with a 500, 130429 with a 429 and Retry-After: 1), permanent ones as 131026 (undeliverable);
        every send takes ``latency`` seconds (uniform), as a real API does. The sequence of draws
        is fixed by ``seed``; which request gets which draw depends on arrival order."""
        self._chaos = (random.Random(seed), retryable, permanent)
        self._latency = latency

    def _draw(self):
        if self._chaos is None:
            return None
        rng, retryable, permanent = self._chaos
        with self._chaos_lock:
            roll, pick, wait = rng.random(), rng.random(), rng.uniform(*self._latency)
        time.sleep(wait)
        if roll < permanent:
            return 400, graph_error(131026, "Message undeliverable"), {}
        if roll < permanent + retryable:
            if pick < 0.5:
                return 500, graph_error(131000, "Something went wrong"), {}
            return 429, graph_error(130429, "Rate limit hit"), {"Retry-After": "1"}
        return None

    def accepted(self) -> list[dict]:
        """Bodies of the message sends answered 200 (what reached the user)."""
        with self._lock:
            return [r.json() for r, status in self.answers if status == 200]

    def routes(self) -> None:
        app = self.app

        def answer(success_body, recorded=None):
            recorded = recorded or self.record(request)
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                return _json(401, graph_error(190, "Invalid OAuth access token"))
            scripted = self.scripted()
            if scripted is not None:
                if scripted.delay:
                    time.sleep(scripted.delay)
                return _json(scripted.status, scripted.body, scripted.headers)
            return _json(200, success_body())

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            def ok():
                body = request.get_json(silent=True) or {}
                to = str(body.get("to", ""))
                return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                        "messages": [{"id": f"wamid.standin{next(self._ids)}"}]}
            entry = self.record(request)
            drawn = self._draw() if request.headers.get("Authorization") == f"Bearer {self.access_token}" else None
            response = _json(*drawn) if drawn is not None else answer(ok, entry)
            with self._lock:
                self.answers.append((entry, response.status_code))
            return response

        @app.post("/<version>/<phone_id>/whatsapp_business_encryption")
        def upload_key(version, phone_id):
            def ok():
                pem = request.form.get("business_public_key") or (
                    request.get_json(silent=True) or {}).get("business_public_key")
                if not pem:
                    return graph_error(100, "business_public_key is required")
                self.public_keys[phone_id] = pem
                return {"success": True}
            return answer(ok)

        @app.get("/<version>/<phone_id>/whatsapp_business_encryption")
        def read_key(version, phone_id):
            def ok():
                pem = self.public_keys.get(phone_id)
                if pem is None:
                    return {"data": []}
                return {"data": [{"business_public_key": pem,
                                  "business_public_key_signature_status": "VALID"}]}
            return answer(ok)

    def sent_messages(self) -> list[dict]:
        """The JSON bodies of every accepted POST .../messages, in order."""
        return [r.json() for r in self.matching("POST", "/messages")]


def _json(status: int, body, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})
