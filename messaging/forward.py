"""Signed POSTs to the business's own systems (the completion forward, hand-overs): the one way
Flowgate POSTs to a business.

The body is JSON; with a secret, ``X-Flowgate-Signature-256: sha256=<hex>`` is HMAC-SHA256 of the
raw body with it, so the receiver can check it exactly like Meta's X-Hub-Signature-256. With an
``idempotency_key`` the POST also carries ``Idempotency-Key``: the same on every attempt, so the
receiver can drop the copy a retry sends after a worker died mid-POST (``workers/effects.py``).
"""
from __future__ import annotations

import json

import requests

from flows.signing import sign
from flows.webhook import as_number

HEADER = "X-Flowgate-Signature-256"  # the completion forward's header too


class ForwardError(Exception):
    def __init__(self, reason: str, retryable: bool, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(reason)
        self.retryable = retryable
        self.status = status  # the receiver's HTTP status; None when no answer came
        self.retry_after = retry_after  # seconds, from its Retry-After


def post_signed(session, url: str, secret: str | None, payload: dict,
                timeout: float = 10.0, idempotency_key: str | None = None) -> int:
    """POST ``payload``; its status (2xx/3xx), else ForwardError: retryable for no answer, 5xx,
    408 and 429 (with the receiver's Retry-After), final for any other 4xx."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[HEADER] = sign(secret, body)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        resp = session.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ForwardError(f"network error: {type(exc).__name__}", retryable=True) from None
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise ForwardError(f"HTTP {resp.status_code}", retryable=True, status=resp.status_code,
                           retry_after=as_number(resp.headers.get("Retry-After")))
    if resp.status_code >= 400:
        raise ForwardError(f"HTTP {resp.status_code}", retryable=False, status=resp.status_code)
    return resp.status_code
