"""Plays Meta against a deployed Flow endpoint and explains what it finds.

An encrypted, signed ``ping``, the same ping with a wrong signature, the flow's ``INIT``, then N
pings for latency against Meta's p90 alert thresholds. Each failure Meta would report as a code
(421, 432, timeout_error, no_http_response_error) comes back as a sentence saying what is wrong
and what to check. No HTTP framework here: the CLI renders a ``Report``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import requests

from flows import keys
from devtools.simulator import FlowClient, Reply

# ENDPOINT_LATENCY alerts fire when p90 crosses these (protocol doc 5.3); Meta gives up at 10 s.
LATENCY_ALERTS = (1.0, 5.0, 7.0)
META_TIMEOUT = 10.0
PING_REPLY = {"data": {"status": "active"}}
WRONG_SIGNATURE = "sha256=" + "0" * 64


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not tested, or informational
    summary: str
    detail: str = ""


@dataclass
class Report:
    url: str
    checks: list[Check] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def add(self, name: str, ok: bool | None, summary: str, detail: str = "") -> Check:
        check = Check(name, ok, summary, detail)
        self.checks.append(check)
        return check

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


class Unreachable(Exception):
    """The request never got an HTTP answer; the message says why in plain words."""


def run(url: str, public_key, app_secret: str | None = None, *, init: bool = True,
        screens: dict | None = None, token: str = "selftest", count: int = 10,
        timeout: float = META_TIMEOUT, version: str = "3.0") -> Report:
    """``screens``: screen id → declared data keys, to check the INIT reply against the Flow JSON;
    ``version``: the Flow's data_api_version, which WhatsApp sends as the request's version."""
    client = FlowClient(url, public_key, app_secret, timeout=timeout)
    report = Report(url)
    try:
        reply = _send(client.ping, timeout)
    except Unreachable as exc:
        report.add("reach", False, "the endpoint did not answer", str(exc))
        return report
    report.add("reach", True, f"HTTP answer in {reply.latency * 1000:.0f} ms")
    report.latencies.append(reply.latency)
    if not _ping_ok(report, reply, client):
        return report
    _signature(report, client, app_secret, timeout)
    if init:
        _init(report, client, token, screens, timeout, version)
    _latency(report, client, count, timeout)
    return report


def _send(call, timeout: float, *args, **kwargs) -> Reply:
    try:
        return call(*args, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise Unreachable(
            "TLS handshake failed: Meta only calls HTTPS endpoints with a valid, CA-signed certificate "
            "(not self-signed, full chain, matching host name). If you pointed https:// at a plain HTTP "
            f"port, use the HTTPS front door instead. ({_short(exc)})") from None
    except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
        raise Unreachable(
            f"no answer within {timeout:g} s. Meta waits at most {META_TIMEOUT:g} s, then counts a "
            "timeout_error and the user sees an error; check that the app is up, not stuck on a slow "
            "lookup, and that nothing (firewall, sleeping dyno) holds the request.") from None
    except requests.exceptions.ConnectionError as exc:
        refused = "refused" in str(exc).lower()
        raise Unreachable(
            ("connection refused: nothing listens at that host and port. Is the app running, and is the "
             "port right (Heroku routes 443 to $PORT)?" if refused else
             "could not connect (DNS, network or a dropped connection: Meta counts it as "
             "no_http_response_error).") + f" ({_short(exc)})") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise Unreachable(f"not a usable URL: {exc}") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160]


def _ping_ok(report: Report, reply: Reply, client: FlowClient) -> bool:
    fp = keys.fingerprint(client.public_key)
    if reply.status == 421:
        report.add("decryption", False, "421: the endpoint could not decrypt the request",
                   f"We encrypted with the public key sha256:{fp[:16]}…, and the endpoint's private key "
                   "does not match it. Meta encrypts with the key registered for the phone number, so "
                   "check which key is registered (flask keys status compares fingerprints) and that "
                   "FLOW_PRIVATE_KEY (or FLOW_PRIVATE_KEY_PREVIOUS during a rotation) is its private half. "
                   "After a rotation, upload the new public key (flask keys upload).")
        return False
    if reply.status == 432:
        report.add("signature", False, "432: the endpoint rejected the request signature",
                   "X-Hub-Signature-256 is HMAC-SHA256 of the raw body with the Meta app secret. The "
                   "secret used here differs from the endpoint's WHATSAPP_APP_SECRET (or none was given: "
                   "pass --app-secret). Use the secret of the Meta app linked to the Flow; during a "
                   "rotation set the old one as WHATSAPP_APP_SECRET_PREVIOUS.")
        return False
    if reply.status == 404:
        report.add("route", False, "404: no Flow endpoint at this URL",
                   "Flowgate serves each flow at /flows/<flow_name>; check the path and the flow name "
                   "(flask flows list).")
        return False
    if reply.status != 200:
        report.add("ping", False, f"HTTP {reply.status} to a ping",
                   "Meta counts any status other than 200/421/427/432 as unexpected_http_status_code. "
                   f"Body starts with: {reply.text[:120]!r}")
        return False
    if reply.body is None:
        report.add("decryption", False, "200, but the reply is not readable",
                   "The reply must be base64 text of AES-GCM with the request's AES key and the IV with "
                   "every bit inverted, tag appended; not JSON, not quoted.")
        return False
    report.add("decryption", True, f"the endpoint decrypted our request (public key sha256:{fp[:16]}…)")
    if reply.body != PING_REPLY:
        report.add("ping", False, "ping reply has the wrong shape",
                   f'expected {{"data": {{"status": "active"}}}}, got {str(reply.body)[:120]}')
        return False
    report.add("ping", True, 'ping answered {"data": {"status": "active"}}')
    return True


def _signature(report: Report, client: FlowClient, app_secret: str | None, timeout: float) -> None:
    if not app_secret:
        report.add("signature", None, "not tested: no app secret given",
                   "The endpoint answered an unsigned ping. Pass --app-secret to test the check; in "
                   "production an unsigned or wrongly signed request must get 432.")
        return
    report.add("signature", True, "a request signed with the app secret is accepted")
    try:
        forged = _send(client.send, timeout, {"version": "3.0", "action": "ping"}, signature=WRONG_SIGNATURE)
    except Unreachable as exc:
        report.add("signature-check", False, "the wrongly signed ping got no answer", str(exc))
        return
    if forged.status == 432:
        report.add("signature-check", True, "a wrongly signed request gets 432")
    else:
        report.add("signature-check", False, f"a wrongly signed request got {forged.status}, not 432",
                   "The endpoint does not verify X-Hub-Signature-256: anyone who knows the URL and the "
                   "public key can call it. Verify HMAC-SHA256(app secret, raw body) and answer 432.")


def _init(report: Report, client: FlowClient, token: str, screens: dict | None, timeout: float,
          version: str = "3.0") -> None:
    try:
        reply = _send(client.init, timeout, token, version=version)
    except Unreachable as exc:
        report.add("init", False, "INIT got no answer", str(exc))
        return
    report.latencies.append(reply.latency)
    if reply.status == 427:
        report.add("init", False, "427 to INIT: the endpoint refused the flow token",
                   "With FLOW_TOKEN_POLICY=strict only tokens the app issued are accepted; run the self-test "
                   "against a token from a sent Flow message (--token), or use the open policy.")
        return
    if reply.status != 200 or not isinstance(reply.body, dict):
        report.add("init", False, f"INIT got HTTP {reply.status} without a readable reply")
        return
    screen, data = reply.body.get("screen"), reply.body.get("data")
    if not isinstance(screen, str) or not isinstance(data, dict):
        report.add("init", False, "INIT reply is not {\"screen\": ID, \"data\": {...}}",
                   f"got {str(reply.body)[:160]}")
        return
    if screens is not None:
        if screen not in screens:
            report.add("init", False, f"INIT opens {screen!r}, which the Flow JSON does not have",
                       "The client would raise invalid-screen-transition.")
            return
        extra = sorted(set(data) - set(screens[screen]) - {"error_message"})
        if extra:
            report.add("init", False, f"INIT sends data keys {screen} does not declare: {', '.join(extra)}",
                       "The client would raise payload-schema-error; declare them in the screen's data.")
            return
    report.add("init", True, f"INIT opens {screen} with {len(data)} data key(s)")


def latency_alert(p90: float | None) -> float | None:
    """The highest of Meta's p90 alert levels this figure reaches, or None."""
    crossed = [level for level in LATENCY_ALERTS if p90 is not None and p90 >= level]
    return crossed[-1] if crossed else None


def _latency(report: Report, client: FlowClient, count: int, timeout: float) -> None:
    failures = 0
    for _ in range(max(0, count - 1)):
        try:
            reply = _send(client.ping, timeout)
        except Unreachable:
            failures += 1
            continue
        if reply.status != 200:
            failures += 1
        report.latencies.append(reply.latency)
    p50, p90 = report.percentile(0.5), report.percentile(0.9)
    alert = latency_alert(p90)
    summary = f"p50 {p50 * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms over {len(report.latencies)} requests"
    if alert is not None:
        report.add("latency", False, summary,
                   f"p90 is past Meta's {alert:g} s ENDPOINT_LATENCY alert (levels 1 s / 5 s / 7 s); "
                   "a degraded Flow gets throttled to 10 sends per hour, then blocked.")
    else:
        report.add("latency", True, summary + " (Meta alerts at p90 1 s / 5 s / 7 s)")
    if failures:
        report.add("errors", False, f"{failures} of {count - 1} follow-up pings failed",
                   "Meta alerts at 5 % / 10 % / 50 % endpoint errors.")
