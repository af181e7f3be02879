"""The Graph API transport: one pooled requests session, explicit timeouts, classified errors.

Everything that talks to Meta (messages, the encryption key endpoint) goes through ``GraphClient``.
Errors are classified from the body's ``error.code`` (protocol doc 8.4) so callers decide between
retrying, switching to a template, and giving up, without parsing responses themselves.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from flows.webhook import as_number

log = logging.getLogger("flowgate.graph")

RETRYABLE_CODES = {130429, 131000, 131016, 131057, 131056, 80007, 4}
NEEDS_TEMPLATE_CODES = {131047}
# "Business-scoped User ID (BSUID) recipients are not supported for this message" (one-tap,
# zero-tap and copy-code authentication templates need a phone number): permanent for that
# message; the user goes to the fallback path (messaging.router).
BSUID_NOT_SUPPORTED = 131062
PERMANENT_CODES = {131026, 131008, 131009, 131048, 131049, 131050, 131051, 132068, 132069, 190, 368,
                   BSUID_NOT_SUPPORTED}

RETRYABLE, NEEDS_TEMPLATE, PERMANENT = "retryable", "needs_template", "permanent"


def classify(status: int, code: int | None) -> str:
    if code in NEEDS_TEMPLATE_CODES:
        return NEEDS_TEMPLATE
    if code in RETRYABLE_CODES:
        return RETRYABLE
    if code in PERMANENT_CODES or (code is not None and 132000 <= code < 133000):
        return PERMANENT
    if status >= 500 or status == 429:
        return RETRYABLE
    return PERMANENT


@dataclass
class GraphError(Exception):
    kind: str  # retryable | needs_template | permanent
    status: int
    code: int | None
    message: str
    retry_after: float | None = None
    # Meta's words for the user of the API (``error_user_title`` / ``error_user_msg``), when given:
    # the Flows API says there what went wrong ("Flow can't be updated").
    user_message: str | None = None

    def __str__(self) -> str:
        return f"Graph API {self.kind} error (HTTP {self.status}, code {self.code}): {self.message}"


def explain(exc: GraphError) -> str:
    """A Graph API failure in words, for the CLI (flask keys, flask doctor)."""
    if exc.code == 190 or exc.status == 401:
        return ("the Graph API refused the access token (code 190): WHATSAPP_ACCESS_TOKEN is invalid or "
                "expired; use a system-user token with whatsapp_business_messaging")
    if exc.status == 0:
        return f"could not reach the Graph API ({exc.message}); check WHATSAPP_API_BASE and the network"
    return f"the Graph API answered HTTP {exc.status} (code {exc.code}): {exc.message}"


class GraphClient:
    def __init__(self, base_url: str, version: str, access_token: str | None,
                 phone_number_id: str | None, timeout: float = 10.0, pool_size: int = 20):
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.timeout = timeout
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        # Resolve requests' environment settings (proxy variables, CA bundle) once, not on every
        # call: per request they cost ~3 ms of a ~9 ms confirmation job in a fresh RQ horse
        # (profiled), and ~/.netrc credentials must never replace our bearer token anyway.
        settings = self.http.merge_environment_settings(self.base_url, {}, None, None, None)
        self.http.proxies.update(settings["proxies"])
        self.http.verify = settings["verify"]
        self.http.trust_env = False

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, json: dict | None = None, data: dict | None = None,
                params: dict | None = None, timeout: float | None = None,
                access_token: str | None = None, files: dict | None = None) -> dict:
        """The decoded JSON body, or GraphError; network failures and timeouts are retryable.
        ``access_token``: another token for this call (an app token, ``APP_ID|APP_SECRET``);
        ``files``: a multipart upload (requests' ``files``, e.g. a Flow JSON asset)."""
        token = access_token or self.access_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            resp = self.http.request(method, self.url(path), json=json, data=data, params=params,
                                     files=files, headers=headers, timeout=timeout or self.timeout)
        except requests.Timeout:
            raise GraphError(RETRYABLE, 0, None, "timeout") from None
        except requests.RequestException as exc:
            raise GraphError(RETRYABLE, 0, None, f"network error: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code < 400 and isinstance(body, dict):
            return body
        error = (body or {}).get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        message = str(error.get("message") or resp.reason or "unreadable response")[:300]
        retry_after = as_number(resp.headers.get("Retry-After"))
        user = " — ".join(dict.fromkeys(str(error[k])[:300] for k in ("error_user_title", "error_user_msg")
                                        if error.get(k)))
        raise GraphError(classify(resp.status_code, code), resp.status_code, code, message, retry_after,
                         user or None)

