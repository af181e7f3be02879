"""One password throttle for HTTP basic auth (/dashboard, /metrics, /playground) and the login
form, through the real gunicorn (two worker processes, so the count must live in Redis).

The client address is the one Heroku's router appends to X-Forwarded-For (TRUSTED_PROXY_HOPS=1):
what a client writes to the left of it is its own and changes nothing.
"""
from __future__ import annotations

import base64
import re

import pytest
import redis as redis_lib
import requests

from blueprints.auth import LOGIN_TRIES_MAX, LOGIN_WINDOW
from conftest import APP_SECRET, served_settings
from procs import Gunicorn

PASSWORD = "throttle-pass-8"


def basic(password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()}


def via_router(client_ip: str, forged: str | None = None) -> dict:
    """The header as Heroku's router passes it on: the client's own value, then the address it saw."""
    return {"X-Forwarded-For": f"{forged}, {client_ip}" if forged else client_ip}


@pytest.fixture(scope="module")
def server(redis_server, keypair):
    redis_lib.Redis.from_url(redis_server.url).flushall()
    with Gunicorn(APP_ENV="production", REDIS_URL=redis_server.url, WEB_CONCURRENCY=2, GUNICORN_THREADS=2,
                  FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"), WHATSAPP_APP_SECRET=APP_SECRET,
                  DASHBOARD_PASSWORD=PASSWORD, TRUSTED_PROXY_HOPS=1, **served_settings()) as gunicorn:
        yield gunicorn
    assert "Traceback" not in gunicorn.output


def get(server, path: str, headers: dict) -> requests.Response:
    # A new connection each time: gunicorn's two processes take turns, so the count must be shared.
    return requests.get(server.url + path, headers={**headers, "Connection": "close"}, timeout=10,
                        allow_redirects=False)


def assert_locked(resp: requests.Response) -> None:
    assert resp.status_code == 429, resp.text[:200]
    assert 0 < int(resp.headers["Retry-After"]) <= LOGIN_WINDOW


def form_login(server, password: str, headers: dict) -> requests.Response:
    """The login form as a browser posts it: the page's CSRF token and session cookie sent back
    (by hand: the production cookie is Secure, and this is plain http on loopback)."""
    page = requests.get(f"{server.url}/dashboard/login", headers=headers, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    cookie = "; ".join(f"{c.name}={c.value}" for c in page.cookies)
    return requests.post(f"{server.url}/dashboard/login", data={"csrf": token, "password": password},
                         headers={**headers, "Cookie": cookie}, timeout=10, allow_redirects=False)


def test_basic_auth_guessing_is_locked_then_the_right_password_waits(server):
    client = via_router("198.51.100.7")
    statuses = [get(server, "/metrics", {**client, **basic(f"guess{i}")}).status_code for i in range(40)]
    assert statuses[:LOGIN_TRIES_MAX] == [401] * LOGIN_TRIES_MAX
    assert set(statuses[LOGIN_TRIES_MAX:]) == {429}
    assert_locked(get(server, "/metrics", {**client, **basic(PASSWORD)}))  # old main: 200
    assert_locked(get(server, "/playground/member_check", {**client, **basic(PASSWORD)}))
    assert_locked(get(server, "/dashboard", {**client, **basic(PASSWORD)}))
    # The login form shares the lock: one throttle for both ways in.
    assert_locked(form_login(server, PASSWORD, client))
    # Whatever the client forges to the left of the router's entry, it is the same client.
    for forged in ("10.0.0.1", "203.0.113.50", "198.51.100.8"):
        assert_locked(get(server, "/metrics", {**via_router("198.51.100.7", forged), **basic(PASSWORD)}))
    # Another address is not locked out by this one.
    assert get(server, "/metrics", {**via_router("198.51.100.99"), **basic(PASSWORD)}).status_code == 200


def test_form_failures_lock_basic_auth_too(server):
    client = via_router("2001:db8:7::1")
    for i in range(LOGIN_TRIES_MAX):
        assert form_login(server, f"wrong{i}", client).status_code == 401
    locked = form_login(server, PASSWORD, client)
    assert_locked(locked)
    assert "Too many attempts" in locked.text
    assert_locked(get(server, "/dashboard", {**client, **basic(PASSWORD)}))
    # An IPv6 client counts by its /64: hopping to a neighbouring address does not help.
    assert_locked(get(server, "/dashboard", {**via_router("2001:db8:7::beef"), **basic(PASSWORD)}))


def test_right_passwords_do_not_use_up_the_tries(server):
    client = via_router("198.51.100.20")
    for _ in range(3 * LOGIN_TRIES_MAX):  # a Prometheus scraper on basic auth
        assert get(server, "/metrics", {**client, **basic(PASSWORD)}).status_code == 200
    assert get(server, "/metrics", {**client, **basic("one-typo")}).status_code == 401
    assert get(server, "/metrics", {**client, **basic(PASSWORD)}).status_code == 200
