"""The collaborators a flow's test needs, real: a redis-server process and the app served over
HTTP on loopback, with a FlowClient that speaks the encrypted protocol to it."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis as redis_lib
from werkzeug.serving import make_server

from devtools.simulator import FlowClient
from flows import keys

APP_SECRET = "testkit-app-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """A throwaway redis-server on 127.0.0.1, nothing kept on disk."""

    def __init__(self):
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="flowgate-redis-")
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisProcess":
        binary = shutil.which("redis-server") or str(Path(sys.executable).parent / "redis-server")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client, until = (redis_lib.Redis(port=self.port, socket_connect_timeout=0.2),
                         time.monotonic() + timeout)
        while True:
            try:
                client.ping()
                return self
            except redis_lib.exceptions.ConnectionError:
                if time.monotonic() > until:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class FlowgateServer:
    """The app, built from production settings plus ``settings``, behind a real HTTP server."""

    _keypair = None  # one RSA key pair per test session: generating one takes a while

    def __init__(self, redis_url: str, **settings):
        from app import create_app

        if FlowgateServer._keypair is None:
            FlowgateServer._keypair = keys.generate()
        private, self.public_key = FlowgateServer._keypair
        instance = tempfile.mkdtemp(prefix="flowgate-instance-")
        # Production settings, with the records in a SQLite file of this server's own (it creates
        # its tables at start) rather than a PostgreSQL server the test would have to provide.
        config = {"APP_ENV": "production", "REDIS_URL": redis_url, "FLOW_PRIVATE_KEY": private,
                  "WHATSAPP_APP_SECRET": APP_SECRET, "SECRET_KEY": "testkit-secret-key-" + "x" * 32,
                  "FOLLOWUP_CHANNEL": "console", "DEMO_FLOWS": False, "FLOW_REPLY_CHECK": True,
                  "INSTANCE_DIR": instance, "DATABASE_URL": f"sqlite:///{instance}/flowgate.sqlite3",
                  **settings}
        self.app = create_app(config)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def client(self, flow: str) -> FlowClient:
        """WhatsApp's side of ``flow``: ``init(token)``, ``exchange(token, screen, data)``, ..."""
        return FlowClient(f"{self.url}/flows/{flow}", self.public_key, APP_SECRET)

    def start(self) -> "FlowgateServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
