"""A loopback Graph API: messages and the business encryption key, with Meta's error shapes."""
from __future__ import annotations

import itertools
import json
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
            return _json(200, success_body())

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            def ok():
                body = request.get_json(silent=True) or {}
                to = str(body.get("to", ""))
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
