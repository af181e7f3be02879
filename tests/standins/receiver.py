"""A loopback stand-in for the business's own system (COMPLETION_FORWARD_URL, HANDOFF_FORWARD_URL).

With a ``secret`` it checks ``X-Flowgate-Signature-256`` (HMAC-SHA256 of the raw body) the way a
business's receiver should, and answers 401 to a POST whose signature does not match.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from flask import Response, request

from standins import StandIn

SIGNATURE_HEADER = "X-Flowgate-Signature-256"


class ReceiverStandIn(StandIn):
    def __init__(self, secret: str | None = None):
        self.secret = secret
        self.bad_signatures = 0
        super().__init__()

    def routes(self) -> None:
        @self.app.post("/submissions")
        @self.app.post("/handoff")
        def receive():
            entry = self.record(request)
            if self.secret is not None and not self.signed(entry.body, request.headers.get(SIGNATURE_HEADER)):
                self.bad_signatures += 1
                return Response('{"error": "bad signature"}', status=401, mimetype="application/json")
            scripted = self.scripted()
            if scripted is not None:
                if scripted.delay:
                    time.sleep(scripted.delay)
                return Response("", status=scripted.status, headers=scripted.headers)
            return Response('{"ok": true}', status=200, mimetype="application/json")

    def signed(self, body: bytes, header: str | None) -> bool:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return bool(header) and hmac.compare_digest(expected, header)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/submissions"

    @property
    def handoff(self) -> str:
        return f"{self.url}/handoff"

    def received(self, path: str = "/handoff") -> list[dict]:
        return [r.json() for r in self.matching("POST", path)]
