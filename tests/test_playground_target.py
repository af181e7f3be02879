"""The playground posts its signed Flow requests to PLAYGROUND_URL only, whatever Host the client
sends: with a forged Host naming another local port, a real loopback listener on that port must
receive nothing, and the flow still plays against the configured endpoint.
"""
from __future__ import annotations

import base64
import re
import socket
import threading

import pytest
import requests

from app import create_app
from conftest import LiveServer

PASSWORD = "pg-pass-4"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()}


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection (and closes it at once)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(peer)
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def served(app_config):
    app = create_app({**app_config, "DASHBOARD_PASSWORD": PASSWORD, "APP_ENV": "development"})
    with LiveServer(app) as server:
        app.config["PLAYGROUND_URL"] = server.url  # the app's own loopback address, as `make run` sets it
        yield server


def test_a_forged_host_header_reaches_only_the_configured_url(served):
    with Listener() as listener:
        forged = {**BASIC, "Host": f"127.0.0.1:{listener.port}"}
        http = requests.Session()
        first = http.get(f"{served.url}/playground/member_check", headers=forged, timeout=30)
        assert first.status_code == 200
        assert 'data-screen="MEMBER_LOOKUP"' in first.text and "INIT</strong> → HTTP 200" in first.text
        assert f"{served.url}/flows/member_check" in first.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', first.text).group(1)
        # Every action that calls the endpoint: a data_exchange, and a restart (a fresh INIT).
        http.post(f"{served.url}/playground/member_check/action", headers=forged, timeout=30,
                  data={"csrf": csrf, "action_id": "footer", "f.member_id": "MEM123"})
        http.post(f"{served.url}/playground/member_check/restart", headers=forged, timeout=30,
                  data={"csrf": csrf})
        page = http.get(f"{served.url}/playground/member_check", headers=forged, timeout=30).text
        assert "could not reach the endpoint" not in page and 'data-screen="MEMBER_LOOKUP"' in page
        assert listener.accepted == []  # old main: one connection per action, signed and encrypted
        assert f"127.0.0.1:{listener.port}" not in page

