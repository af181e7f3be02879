"""Plays WhatsApp against a Flow endpoint: encrypt, sign, POST, decrypt.

The same client backs ``flask flows simulate``, the endpoint self-test, the playground and the
tests, so what the tests prove is what a developer runs.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests

from flows import crypto, keys
from flows.signing import HEADER, sign


@dataclass
class Reply:
    status: int
    body: dict | None  # the decrypted reply (200, and 427 when it carries error_msg)
    text: str  # the raw HTTP body
    latency: float  # seconds, request sent to reply read
    request: dict | None = None  # the plaintext that was sent

    @property
    def screen(self) -> str | None:
        return (self.body or {}).get("screen")

    @property
    def data(self) -> dict:
        return (self.body or {}).get("data") or {}


class FlowClient:
    def __init__(self, url: str, public_key, app_secret: str | None = None,
                 timeout: float = 10.0, session: requests.Session | None = None):
        self.url = url
        self.public_key = (keys.load_public_key(public_key) if isinstance(public_key, (str, bytes))
                           else public_key)
        self.app_secret = app_secret
        self.timeout = timeout
        self.http = session or requests.Session()

    def seal(self, payload: dict) -> tuple[bytes, crypto.SealedRequest]:
        sealed = crypto.encrypt_request(payload, self.public_key)
        return json.dumps(sealed.body).encode(), sealed

    def post(self, raw: bytes, headers: dict | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.http.post(self.url, data=raw, headers=headers, timeout=self.timeout)

    def send(self, payload: dict, *, signature: str | None = None) -> Reply:
        raw, sealed = self.seal(payload)
        headers = {}
        if signature is not None:
            headers[HEADER] = signature
        elif self.app_secret:
            headers[HEADER] = sign(self.app_secret, raw)
        started = time.perf_counter()
        resp = self.post(raw, headers)
        latency = time.perf_counter() - started
        body = None
        if resp.status_code in (200, 427) and resp.text:
            try:
                body = crypto.decrypt_reply(resp.text, sealed.aes_key, sealed.iv)
            except Exception:  # a reply we cannot read is reported as such, with its status
                body = None
        return Reply(resp.status_code, body, resp.text, latency, payload)

    # --- the requests WhatsApp makes ------------------------------------------------------
    def ping(self, version: str = "3.0") -> Reply:
        return self.send({"version": version, "action": "ping"})

    def init(self, token: str | None, data: dict | None = None, version: str = "3.0") -> Reply:
        return self.send(_payload("INIT", token, None, data, version))

    def exchange(self, token: str | None, screen: str, data: dict, version: str = "3.0") -> Reply:
        return self.send(_payload("data_exchange", token, screen, data, version))

    def back(self, token: str | None, screen: str, version: str = "3.0") -> Reply:
        return self.send(_payload("BACK", token, screen, None, version))

    def error(self, token: str, screen: str, error_key: str = "invalid-screen-transition",
              message: str = "simulated client error") -> Reply:
        return self.send(_payload("data_exchange", token, screen,
                                  {"error": error_key, "error_message": message}, "3.0"))


def _payload(action, token, screen, data, version) -> dict:
    payload = {"version": version, "action": action}
    if screen:
        payload["screen"] = screen
    if data:
        payload["data"] = data
    if token:
        payload["flow_token"] = token
    return payload
