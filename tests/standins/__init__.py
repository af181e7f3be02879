"""Loopback stand-ins for the APIs we cannot reach from here (Meta's Graph API, WASenderApi).

Each is a real HTTP server on 127.0.0.1 in a thread of the test process, speaking the documented
request and error shapes. ``StandIn`` records every request and can be scripted to fail.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from flask import Flask
from werkzeug.serving import make_server


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.time)
    query: str = ""  # the raw query string (Graph reads its ``fields`` there)

    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Scripted:
    """One scripted answer: status, JSON body, headers, and an optional delay before it."""

    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class ServedApp:
    """A WSGI app behind a real HTTP server on 127.0.0.1 (ephemeral port), in a thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


class StandIn(ServedApp):
    """Subclasses add routes to ``self.app`` and call ``self.record()`` / ``self.scripted()``."""

    def __init__(self):
        app = Flask(type(self).__name__)
        self.requests: list[Recorded] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self.app = app
        self.routes()
        super().__init__(app)

    def routes(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- recording and scripting ------------------------------------------------------------
    def record(self, request) -> Recorded:
        entry = Recorded(request.method, request.path, dict(request.headers), request.get_data(),
                         query=request.query_string.decode("latin-1"))
        with self._lock:
            self.requests.append(entry)
        return entry

    def fail_next(self, status: int, body=None, times: int = 1, headers: dict | None = None,
                  delay: float = 0.0) -> None:
        with self._lock:
            for _ in range(times):
                self._script.append(Scripted(status, body, headers or {}, delay))

    def scripted(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def matching(self, method: str, path_suffix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]
