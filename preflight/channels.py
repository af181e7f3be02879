"""WASenderApi: when the hybrid or wasender channel is on, its session must be connected.

``GET /api/status`` (``messaging.wasender.WASenderClient.fetch_status``, lower-cased there: the
docs write ``connected``, and the comparison must not depend on case).
"""
from __future__ import annotations

from messaging.wasender import WASenderError
from preflight.settings import NEEDS_WASENDER, channel_of

RESCAN = "open the session in the WASender dashboard and scan its QR code with the business phone"
ADVICE = {"need_scan": RESCAN, "logged_out": RESCAN, "expired": RESCAN,
          "disconnected": "connect the session in the WASender dashboard",
          "connecting": "wait a minute and run flask doctor again"}


def check(report, app) -> None:
    mode = channel_of(app.config)
    client = app.extensions["wasender"]
    if mode not in NEEDS_WASENDER:
        report.skip("wasender", f"not used (FOLLOWUP_CHANNEL {mode})")
        return
    if not client.configured:
        report.skip("wasender", "not checked: WASENDER_API_KEY not set")
        return
    try:
        status = client.fetch_status()
    except WASenderError as exc:
        if exc.status in (401, 403):
            report.fail("wasender", f"WASender refused the API key (HTTP {exc.status})",
                        "WASENDER_API_KEY: the API key of the session (WASender "
                        "dashboard → session → API key)")
        elif exc.kind == "rate_limited":
            report.warn("wasender", "WASender answered 429 (rate limited)",
                        "run flask doctor again in a minute")
        else:
            report.fail("wasender", f"could not read the session status: {exc}", "check WASENDER_API_BASE")
        return
    if status == "connected":
        report.ok("wasender", "session connected")
    else:
        report.fail("wasender", f"session is {status}: nothing can be sent through WASender",
                    ADVICE.get(status, "check the session in the WASender dashboard"))
