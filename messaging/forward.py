"""Signed POSTs to the business's own systems (completions, hand-overs).

The body is JSON; ``X-Flowgate-Signature-256: sha256=<hex>`` is HMAC-SHA256 of the raw body with the
shared secret, so the receiver can check it exactly like Meta's X-Hub-Signature-256. With an
``idempotency_key`` the POST also carries ``Idempotency-Key``: the same on every attempt, so the
receiver can drop the copy a retry sends after a worker died mid-POST (``workers/effects.py``).
"""
from __future__ import annotations

import hashlib
import hmac
import json

import requests

HEADER = "X-Flowgate-Signature-256"  # the completion forward's header too


class ForwardError(Exception):
    def __init__(self, reason: str, retryable: bool):
        super().__init__(reason)
        self.retryable = retryable


def signature(secret: str | None, body: bytes) -> str:
    return "sha256=" + hmac.new((secret or "").encode(), body, hashlib.sha256).hexdigest()


def post_signed(session: requests.Session, url: str, secret: str | None, payload: dict,
                timeout: float = 10.0, idempotency_key: str | None = None) -> int:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", HEADER: signature(secret, body)}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        resp = session.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ForwardError(f"network error: {type(exc).__name__}", retryable=True) from None
    if resp.status_code >= 500 or resp.status_code == 429:
        raise ForwardError(f"HTTP {resp.status_code}", retryable=True)
    if resp.status_code >= 400:
        raise ForwardError(f"HTTP {resp.status_code}", retryable=False)
    return resp.status_code
