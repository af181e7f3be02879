"""A stand-in for the business's own API: ``GET /<resource>?key=<value>`` or
``GET /<resource>/<value>`` → 200 and the record as JSON, or 404; what Flowgate's lookups expect
(validation/lookups.py). It counts calls and can be told to fail, as a real API sometimes does."""
from __future__ import annotations

import threading
from collections import defaultdict

from flask import Flask, abort, jsonify, request
from werkzeug.serving import make_server


class BusinessAPI:
    def __init__(self, records: dict | None = None):
        self.records: dict[str, dict] = defaultdict(dict, records or {})
        self.calls: list[tuple[str, str]] = []  # (resource, value)
        self.failing = False  # True: every call answers 503
        app = Flask("business_api")

        @app.get("/<resource>", defaults={"value": None})
        @app.get("/<resource>/<value>")
        def lookup(resource, value):
            value = value if value is not None else request.args.get("key", "")
            self.calls.append((resource, value))
            if self.failing:
                abort(503)
            record = self.records[resource].get(value)
            return jsonify(record) if record is not None else ("", 404)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def url(self, resource: str) -> str:
        """What to set as ``<PREFIX>_URL`` for a lookup answered from ``records[resource]``."""
        return f"http://127.0.0.1:{self._server.server_port}/{resource}?key={{value}}"

    def start(self) -> "BusinessAPI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
