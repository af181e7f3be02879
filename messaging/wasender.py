"""WASenderApi: the unofficial, session-based WhatsApp API used where the Cloud API can't reach.

Not the ``wasenderapi`` SDK: its sync client sends without a timeout (it could hang a worker) and
compares webhook secrets with ``==``. Here: a pooled session with explicit timeouts, the documented
``GET /api/status`` (cached briefly in Redis, shared by all workers), a shared token bucket at the
plan's rate and a shared daily cap (the trial's 50 sends a day), and 429 + ``retry_after`` turned
into a wait every worker honours.

Session status values are compared without regard to case: the API docs show ``connected``, the
official SDK (0.3.5) models the ``session.status`` webhook's as ``CONNECTED``.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import requests

from flows.webhook import as_number
from messaging.ratelimit import DailyCap, TokenBucket

log = logging.getLogger("flowgate.wasender")

STATUS_KEY = "fg:wasender:status"
STATUS_CACHE_SECONDS = 30
CONNECTED = "connected"


@dataclass
class WASenderError(Exception):
    kind: str  # "retryable" | "rate_limited" | "not_connected" | "permanent"
    status: int
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"WASender {self.kind} (HTTP {self.status}): {self.message}"


def signature_ok(secret: str | None, header: str | None) -> bool:
    """X-Webhook-Signature is the shared secret itself (not an HMAC): compare in constant time."""
    if not secret or not header:
        return False
    return hmac.compare_digest(secret.encode(), header.encode())


class WASenderClient:
    def __init__(self, base_url: str, api_key: str | None, redis, per_second: float,
                 timeout: float = 10.0, daily_cap: int = 0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.redis = redis
        self.timeout = timeout
        self.http = requests.Session()
        # The plan's rate belongs to the WASender session, which the API key names.
        session_id = hashlib.sha256((api_key or "").encode()).hexdigest()[:12]
        self.bucket = TokenBucket(redis, f"fg:wasender:bucket:{session_id}", per_second)
        self.daily = DailyCap(redis, f"fg:wasender:daily:{session_id}", daily_cap)

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def _call(self, method: str, path: str, json: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            resp = self.http.request(method, f"{self.base_url}/{path.lstrip('/')}", json=json,
                                     headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WASenderError("retryable", 0, f"network error: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if resp.status_code == 429:
            retry_after = (as_number(body.get("retry_after")) or as_number(resp.headers.get("Retry-After"))
                           or 60.0)
            self.bucket.hold_off(retry_after)
            raise WASenderError("rate_limited", 429, str(body.get("message", ""))[:200], retry_after)
        if resp.status_code >= 500:
            raise WASenderError("retryable", resp.status_code, str(body.get("message", ""))[:200])
        if resp.status_code >= 400 or body.get("success") is False:
            raise WASenderError("permanent", resp.status_code, str(body.get("message", ""))[:200])
        return body

    def fetch_status(self) -> str:
        """``GET /api/status`` now, lower-cased (the docs write ``connected``; compare whatever
        case arrives); raises WASenderError."""
        return _status(self._call("GET", "/status").get("status", "unknown"))

    def status(self, fresh: bool = False) -> str:
        """The session status (connected, need_scan, logged_out, ...), cached for all workers."""
        if not fresh:
            cached = self.redis.get(STATUS_KEY)
            if cached:
                return cached.decode()
        try:
            status = self.fetch_status()
        except WASenderError as exc:
            if exc.kind == "rate_limited":
                raise
            status = "unreachable"
        self.redis.set(STATUS_KEY, status, ex=STATUS_CACHE_SECONDS)
        return status

    def record_status(self, status: str) -> None:
        """A session.status webhook is fresher than any poll."""
        self.redis.set(STATUS_KEY, _status(status), ex=STATUS_CACHE_SECONDS)

    def send(self, to: str, text: str, *, document_url: str | None = None,
             image_url: str | None = None, file_name: str | None = None) -> str:
        """Send one message and return its msgId; raises WASenderError (kind says what to do)."""
        status = self.status()
        if status.lower() != CONNECTED:
            raise WASenderError("not_connected", 0, f"session status is {status}")
        granted, wait = self.bucket.take()
        if not granted:
            raise WASenderError("rate_limited", 0, "local rate limit", retry_after=wait)
        granted, wait = self.daily.take()
        if not granted:
            raise WASenderError("rate_limited", 0, f"daily cap of {self.daily.cap} sends reached",
                                retry_after=wait)
        payload = {"to": to if to.startswith("+") else f"+{to}", "text": text}
        if document_url:
            payload.update(documentUrl=document_url, fileName=file_name or "document.pdf")
        if image_url:
            payload["imageUrl"] = image_url
        body = self._call("POST", "/send-message", json=payload)
        return str((body.get("data") or {}).get("msgId", ""))


def _status(value) -> str:
    return str(value).strip().lower()[:40] or "unknown"

