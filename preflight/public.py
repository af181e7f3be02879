"""The public URLs Meta calls: each served flow answers an encrypted, signed ping there.

``devtools.selftest`` plays Meta: the ping is encrypted with this app's public key (the one Meta
holds, when the meta-key check passed) and signed with WHATSAPP_APP_SECRET; a wrongly signed one
must get 432. Only with PUBLIC_BASE_URL set: the app cannot guess its own public address.
"""
from __future__ import annotations

from devtools import selftest

TIMEOUT = 10.0


def check(report, app) -> None:
    base = app.config["PUBLIC_BASE_URL"]
    if not base:
        if report.production:
            report.warn("public-endpoint", "not checked: PUBLIC_BASE_URL is not set",
                        "set PUBLIC_BASE_URL=https://<your-app>.herokuapp.com")
        else:
            report.skip("public-endpoint", "not checked: PUBLIC_BASE_URL is not set")
        return
    flows = list(app.extensions["flows"])
    if not flows:
        report.warn("public-endpoint", "no flow is served here",
                    "put your flows in the FLOWS_PACKAGE folder (business_flows/ by default)")
        return
    public_key = app.extensions["keyring"].public_pem
    for flow in flows:
        url = f"{base.rstrip('/')}/flows/{flow.name}"
        result = selftest.run(url, public_key, app.config["WHATSAPP_APP_SECRET"], init=False, count=1,
                              timeout=TIMEOUT)
        failed = next((c for c in result.checks if c.ok is False), None)
        if failed is not None:
            report.fail(f"endpoint {flow.name}", f"{url}: {failed.summary}",
                        failed.detail or f"flask endpoint selftest {url}")
        else:
            ms = result.latencies[0] * 1000 if result.latencies else 0
            report.ok(f"endpoint {flow.name}", f"{url} answered an encrypted, signed ping in {ms:.0f} ms "
                                               "(a wrongly signed one gets 432)")
