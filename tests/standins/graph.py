"""A loopback Graph API: messages and the business encryption key, with Meta's error shapes."""
from __future__ import annotations

import itertools
import json
import random
import threading
import time

import requests
from flask import Response, request

from standins import StandIn

ACCESS_TOKEN = "test-graph-token"
# What the Cloud API takes by link (its "supported media types"): type → (MIME types, max bytes).
MEDIA_LIMITS = {
    "image": (("image/jpeg", "image/png"), 5 * 1024 * 1024),
    "document": (("application/pdf", "text/plain", "application/msword",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document"), 100 * 1024 * 1024),
}


def fetch_media(link: str, kind: str, limits) -> tuple[int, dict] | None:
    """Download the link as Meta does (only loopback links exist in tests) and refuse what the
    Cloud API refuses: unreachable → 131052, wrong type or too large → 131053."""
    types, max_bytes = limits
    try:
        with requests.get(link, timeout=5, stream=True) as resp:
            if resp.status_code != 200:
                return 400, graph_error(131052, "Media download error",
                                        f"Media URL answered HTTP {resp.status_code}")
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in types:
                return 400, graph_error(131053, "Media upload error",
                                        f"Unsupported {kind} type {content_type or 'unknown'}")
            size = 0
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    return 400, graph_error(131053, "Media upload error",
                                            f"{kind} exceeds the {max_bytes}-byte limit")
    except requests.RequestException:
        return 400, graph_error(131052, "Media download error", "Media URL could not be fetched")
    return None


def graph_error(code: int, message: str = "error", details: str = "") -> dict:
    """The body Meta returns: {"error": {"message", "type", "code", "error_data", "fbtrace_id"}}."""
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details or message},
                      "fbtrace_id": "AbCdEf123"}}


class GraphStandIn(StandIn):
    def __init__(self, access_token: str = ACCESS_TOKEN):
        self.access_token = access_token
        self.public_keys: dict[str, str] = {}  # phone number id → uploaded PEM
        self.media_limits = dict(MEDIA_LIMITS)  # a test may lower a limit to see the refusal
        self._ids = itertools.count(1)
        self._chaos: tuple[random.Random, float, float] | None = None
        self._chaos_lock = threading.Lock()
        self.answers: list[tuple[object, int]] = []  # (Recorded, status) of every messages POST
        self._holds: list[tuple[object, float, threading.Event]] = []
        super().__init__()

    def hold(self, match, seconds: float) -> threading.Event:
        """Keep the next message send whose JSON body ``match``es open for ``seconds`` before
        answering it as usual (Meta accepts it, slowly): a kill in that time lands mid-send. The
        event is set once the request has arrived (it is recorded, so it counts as sent)."""
        arrived = threading.Event()
        with self._lock:
            self._holds.append((match, seconds, arrived))
        return arrived

    def _held(self, body: dict) -> None:
        with self._lock:
            found = next((h for h in self._holds if h[0](body)), None)
            if found:
                self._holds.remove(found)
        if found:
            found[2].set()
            time.sleep(found[1])

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
            result = success_body()
            if isinstance(result, tuple):  # (status, error body): what Meta answers to this request
                return _json(*result)
            return _json(200, result)

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            def ok():
                body = request.get_json(silent=True) or {}
                to = str(body.get("to", ""))
                kind = body.get("type")
                if kind in MEDIA_LIMITS and isinstance(body.get(kind), dict) and body[kind].get("link"):
                    refused = fetch_media(body[kind]["link"], kind, self.media_limits[kind])
                    if refused:
                        return refused
                return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                        "messages": [{"id": f"wamid.standin{next(self._ids)}"}]}
            entry = self.record(request)
            self._held(request.get_json(silent=True) or {})
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
