"""A loopback Graph API: messages and the business encryption key, with Meta's error shapes."""
from __future__ import annotations

import itertools
import json
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
        super().__init__()

    def routes(self) -> None:
        app = self.app

        def answer(success_body):
            self.record(request)
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
            return answer(ok)

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
