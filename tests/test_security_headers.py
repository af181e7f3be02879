"""Security headers on every response, over real HTTP: pages, JSON, errors of every kind and the
encrypted endpoint's text/plain replies; and pages the Content-Security-Policy does not break.

No browser is needed for the second part: the policy allows no inline style or script without
the response's nonce, so a page complies when every <style>/<script> carries that nonce and no
element has a ``style=`` or ``on…=`` attribute or a ``javascript:`` URL (tests/test_browser.py
drives real Chromium through the same pages when it is installed).
"""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
import requests

from app import create_app
from conftest import APP_SECRET, LiveServer, free_port
from flows.signing import HEADER, sign
from devtools.simulator import FlowClient
from workers.queues import DEFAULT, build_worker, queue

PASSWORD = "hdr-pass-5"
API_TOKEN = "hdr-api-token"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"ops:nope").decode()}
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def assert_secure(resp: requests.Response, production: bool = True) -> None:
    h = resp.headers
    what = f"{resp.request.method} {resp.url} → {resp.status_code}"
    csp = h.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, what
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert h.get("X-Frame-Options") == "DENY", what
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("Referrer-Policy") == "same-origin", what
    assert ("Strict-Transport-Security" in h) == production, what
    if production:
        assert h["Strict-Transport-Security"].startswith("max-age=31536000"), what


def boom():
    raise RuntimeError("a bug, to see the 500 answer")


def test_every_kind_of_response_carries_the_headers(app_config, keypair, redis_client):
    app = create_app({**app_config, "DASHBOARD_PASSWORD": PASSWORD, "API_TOKEN": API_TOKEN,
                      "FLOW_MAX_REQUEST_BYTES": 4096})
    app.add_url_rule("/test-only/boom", view_func=boom)  # a route of the test's own: the 500 path
    with LiveServer(app) as server:
        base = server.url
        fc = FlowClient(f"{base}/flows/member_check", keypair[1], APP_SECRET)
        raw, _ = fc.seal({"version": "3.0", "action": "ping"})
        responses = [
            requests.get(f"{base}/health"),
            requests.get(f"{base}/nowhere"),  # 404 JSON
            requests.put(f"{base}/health"),  # 405
            requests.get(f"{base}/api/submissions?limit=%C2%B2", headers=BEARER),  # 400
            requests.get(f"{base}/api/submissions"),  # 401 JSON
            requests.get(f"{base}/metrics"),  # 401 text/plain challenge
            requests.get(f"{base}/dashboard", allow_redirects=False),  # 303
            requests.get(f"{base}/dashboard/login"),
            requests.get(f"{base}/dashboard", headers=BASIC),
            requests.get(f"{base}/metrics", headers=BASIC),
            requests.get(f"{base}/playground/member_check", headers=BASIC),
            requests.post(f"{base}/api/flows/member_check/send", data="[" * 5000, headers=BEARER),
            requests.get(f"{base}/test-only/boom"),  # 500
            requests.get(f"{base}/media/0123456789abcdef0123456789abcdef"),  # 400
            requests.get(f"{base}/webhooks/whatsapp"),  # 403 text/plain
            requests.get(f"{base}/demo-api/members/MEM123"),
            fc.post(raw, {HEADER: sign(APP_SECRET, raw)}),  # 200: the encrypted reply, text/plain
            fc.post(raw, {HEADER: "sha256=00"}),  # 432
            fc.post(b'{"encrypted_flow_data": "x", "encrypted_aes_key": "x", "initial_vector": "x"}',
                    {HEADER: sign(APP_SECRET, b'{"encrypted_flow_data": "x", "encrypted_aes_key": "x", '
                                              b'"initial_vector": "x"}')}),  # 421
            fc.post(b"x" * 5000),  # 413
        ]
        for _ in range(11):
            responses.append(requests.get(f"{base}/dashboard", headers=WRONG))
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 303, 400, 401, 403, 404, 405, 413, 421, 429, 432, 500], statuses
    assert responses[16].headers["Content-Type"].startswith("text/plain") and responses[16].status_code == 200
    assert responses[-1].status_code == 429 and responses[-1].headers["Retry-After"].isdigit()
    for resp in responses:
        assert_secure(resp)


def test_redis_down_answers_carry_them_too(app_config):
    app = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "API_TOKEN": API_TOKEN,
                      "DASHBOARD_PASSWORD": PASSWORD})
    with LiveServer(app) as server:
        for resp in (requests.post(f"{server.url}/api/flows/member_check/send", json={"to": "+15550001234"},
                                   headers=BEARER),
                     requests.get(f"{server.url}/dashboard", headers=BASIC)):
            assert resp.status_code == 503
            assert_secure(resp)


def test_development_has_no_hsts(app_config):
    with LiveServer(create_app({**app_config, "APP_ENV": "development"})) as server:
        for path in ("/dashboard", "/health", "/nowhere"):
            assert_secure(requests.get(server.url + path), production=False)


# --- pages the policy does not break ------------------------------------------------------------

class Inline(HTMLParser):
    """What a CSP without 'unsafe-inline' would block on a page."""

    def __init__(self):
        super().__init__()
        self.blocked, self.nonces, self.elements = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.elements += 1
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name == "style" or name.startswith("on"):
                self.blocked.append(f"<{tag} {name}=...>")
            if (name in ("href", "src", "action", "formaction")
                    and (value or "").strip().lower().startswith("javascript:")):
                self.blocked.append(f"<{tag} {name}=javascript:>")
        if tag in ("style", "script") and "src" not in attrs:
            self.nonces.append(attrs.get("nonce"))
        if (tag == "link" and "stylesheet" in (attrs.get("rel") or "")
                and not (attrs.get("href") or "").startswith("/")):
            self.blocked.append(f"<link {attrs.get('href')}>")  # only this origin's files


def assert_page_complies(resp: requests.Response) -> None:
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html"), resp.url
    csp = resp.headers["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
    nonce = re.search(r"'nonce-([A-Za-z0-9_\-+/=]+)'", directives["style-src"]).group(1)
    assert f"'nonce-{nonce}'" in directives["script-src"]
    page = Inline()
    page.feed(resp.text)
    assert page.elements > 10 and page.nonces, resp.url
    assert page.blocked == [], (resp.url, page.blocked)
    assert set(page.nonces) == {nonce}, (resp.url, page.nonces)


def flaky_job() -> None:
    raise RuntimeError("stand-in failure")


@pytest.fixture
def dev_server(app_config):
    app = create_app({**app_config, "APP_ENV": "development", "DASHBOARD_PASSWORD": PASSWORD})
    with LiveServer(app) as server:
        app.config["PLAYGROUND_URL"] = server.url
        yield app, server


def test_every_page_complies_with_the_policy(dev_server, keypair, redis_client):
    app, server = dev_server
    fc = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET)
    fc.init("tok-hdr")
    fc.exchange("tok-hdr", "MEMBER_LOOKUP", {"member_id": "NOPE1"})
    q = queue(redis_client, DEFAULT)
    q.enqueue(f"{__name__}.flaky_job", job_timeout=30, failure_ttl=600)
    build_worker(redis_client).work(burst=True)

    http = requests.Session()
    http.headers.update(BASIC)
    pages = [http.get(f"{server.url}/dashboard"), http.get(f"{server.url}/playground"),
             requests.get(f"{server.url}/dashboard/login")]
    for flow in app.extensions["flows"]:
        pages.append(http.get(f"{server.url}/playground/{flow.name}"))
    # A screen with a field error and the snackbar, then the completed state.
    html = pages[3 + [f.name for f in app.extensions["flows"]].index("member_check")].text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    for member_id in ("NOPE42", "MEM123"):
        http.post(f"{server.url}/playground/member_check/action",
                  data={"csrf": csrf, "action_id": "footer", "f.member_id": member_id})
        pages.append(http.get(f"{server.url}/playground/member_check"))
    assert 'id="err-member_id"' in pages[-2].text and 'data-screen="CONFIRM"' in pages[-1].text
    assert "failed-job" in pages[0].text
    for resp in pages:
        assert_page_complies(resp)
    first, second = (re.search(r"'nonce-([^']+)'", p.headers["Content-Security-Policy"]).group(1)
                     for p in pages[:2])
    assert first != second  # a nonce per response
