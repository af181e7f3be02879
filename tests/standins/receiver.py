"""A loopback stand-in for the business's own system (COMPLETION_FORWARD_URL)."""
from __future__ import annotations

import time

from flask import Response, request

from standins import StandIn


class ReceiverStandIn(StandIn):
    def routes(self) -> None:
        @self.app.post("/submissions")
        def receive():
            self.record(request)
            scripted = self.scripted()
            if scripted is not None:
                if scripted.delay:
                    time.sleep(scripted.delay)
                return Response("", status=scripted.status, headers=scripted.headers)
            return Response('{"ok": true}', status=200, mimetype="application/json")

    @property
    def endpoint(self) -> str:
        return f"{self.url}/submissions"
