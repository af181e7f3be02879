"""A loopback WASenderApi: session status, send-message, and its 429 with retry_after."""
from __future__ import annotations

import itertools
import json
import re

import requests
from flask import Response, request

from standins import StandIn

API_KEY = "test-wasender-key"


class WASenderStandIn(StandIn):
    def __init__(self, api_key: str = API_KEY, status: str = "connected"):
        self.api_key = api_key
        self.session_status = status
        self._ids = itertools.count(1000)
        # What WASenderApi takes by URL: type → (MIME prefixes, max bytes); tests may lower them.
        self.media_limits = {"image": (("image/",), 16 * 1024 * 1024),
                             "document": (("application/", "text/"), 50 * 1024 * 1024)}
        super().__init__()

    def fetch_media(self, url: str, kind: str) -> str | None:
        """Fetch the file as WASender does before sending it; the refusal text, or None."""
        prefixes, max_bytes = self.media_limits[kind]
        try:
            with requests.get(url, timeout=5, stream=True) as resp:
                if resp.status_code != 200:
                    return f"Unable to download the {kind} from the given URL."
                if not resp.headers.get("Content-Type", "").startswith(prefixes):
                    return f"The {kind} has an unsupported file type."
                size = sum(len(chunk) for chunk in resp.iter_content(64 * 1024))
                if size > max_bytes:
                    return f"The {kind} may not be greater than {max_bytes // 1024} kilobytes."
        except requests.RequestException:
            return f"Unable to download the {kind} from the given URL."
        return None

    def routes(self) -> None:
        app = self.app

        def authorised():
            return request.headers.get("Authorization") == f"Bearer {self.api_key}"

        @app.get("/api/status")
        def status():
            self.record(request)
            if not authorised():
                return _json(401, {"success": False, "message": "Unauthenticated."})
            return _json(200, {"status": self.session_status})

        @app.post("/api/send-message")
        def send_message():
            self.record(request)
            if not authorised():
                return _json(401, {"success": False, "message": "Unauthenticated."})
            scripted = self.scripted()
            if scripted is not None:
                return _json(scripted.status, scripted.body, scripted.headers)
            body = request.get_json(silent=True) or {}
            for field, kind in (("imageUrl", "image"), ("documentUrl", "document")):
                if body.get(field):
                    refused = self.fetch_media(body[field], kind)
                    if refused:
                        return _json(422, {"success": False, "message": refused})
            if not body.get("to") or not (body.get("text") or body.get("documentUrl")
                                          or body.get("imageUrl")):
                return _json(422, {"success": False, "message": "The to field is required."})
            if not re.fullmatch(r"\+?\d{6,15}", str(body["to"])):
                # Phone numbers only: a BSUID (a WhatsApp username user) means nothing here.
                return _json(422, {"success": False, "message": "The to field must be a valid phone number."})
            return _json(200, {"success": True, "data": {"msgId": next(self._ids), "jid": body["to"],
                                                         "status": "in_progress"}})

    def rate_limit_next(self, retry_after: int = 60, times: int = 1) -> None:
        self.fail_next(429,
                       {"message": "You are on a free trial. You can only send 1 message every 1 minute.",
                             "retry_after": retry_after}, times=times)

    def sent(self) -> list[dict]:
        return [r.json() for r in self.matching("POST", "/api/send-message")]


def _json(status: int, body, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})


def inbound_event(phone: str, text: str, message_id: str) -> dict:
    """A messages.upsert webhook for a message the user sent to our WASender number."""
    return {"event": "messages.upsert", "timestamp": 1, "data": {"messages": [
        {"key": {"id": message_id, "fromMe": False, "remoteJid": f"{phone}@s.whatsapp.net",
                 "cleanedSenderPn": phone}, "messageBody": text, "message": {"conversation": text}}]}}
