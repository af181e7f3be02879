"""A loopback stand-in for the business's own APIs (members, coverage, coupons, inventory,
calendar): ``GET /<resource>/<key>`` or ``/<resource>?key=<key>`` → 200 JSON object or 404, like
examples/demo_api.py.

It can be told to misbehave, for every call from now on (``behave``) or for the next few
(``fail_next``): be slow, hang, answer 500, answer non-JSON, or send a huge body. It counts calls.
"""
from __future__ import annotations

import copy
import json
import threading

from flask import Response, request

from examples import demo_api
from standins import StandIn

SEED = {
    "members": demo_api.MEMBERS, "coverage": {k: {"area": v} for k, v in demo_api.COVERAGE.items()},
    "coupons": demo_api.COUPONS, "inventory": demo_api.INVENTORY,
}
MODES = ("ok", "slow", "hang", "500", "garbage", "huge", "list", "drip")


class BusinessStandIn(StandIn):
    def __init__(self, data: dict | None = None, auth: str | None = None):
        self.data = copy.deepcopy(SEED if data is None else data)
        self.data.setdefault("calendar", {})
        self.auth = auth
        self.mode, self.delay = "ok", 0.0
        self._release = threading.Event()
        super().__init__()

    def routes(self) -> None:
        @self.app.get("/<resource>", defaults={"key": None})
        @self.app.get("/<resource>/<key>")
        def lookup(resource, key):
            self.record(request)
            key = key if key is not None else request.args.get("key", "")
            if self.auth and request.headers.get("Authorization") != self.auth:
                return _json(401, {"error": "unauthorized"})
            scripted = self.scripted()
            mode, delay = (scripted.body, scripted.delay) if scripted else (self.mode, self.delay)
            if mode == "drip":  # headers at once, then a byte every ``delay`` seconds
                return Response(self._drip(delay or 0.1), status=200, mimetype="application/json")
            if mode == "hang":
                self._release.wait(delay or 60)
            elif delay:
                self._release.wait(delay)
            if mode == "500":
                return _json(500, {"error": "internal"})
            if mode == "garbage":
                return Response("<html>oops</html>", status=200, mimetype="text/html")
            if mode == "huge":
                return _json(200, {"pad": "x" * (2 * 1024 * 1024)})
            if mode == "list":
                return _json(200, [1, 2, 3])
            record = self.answer(resource, key)
            return _json(200, record) if record is not None else _json(404, {"error": "not found"})

    def answer(self, resource: str, key: str):
        if resource == "calendar":
            slots = self.data["calendar"].get(key, demo_api.OPENING)
            return {"date": key, "slots": list(slots)}
        found = self.data.get(resource, {}).get(key)
        return None if found is None else {"key": key, **found}

    def _drip(self, every: float):
        for byte in b'{"name": "' + b"x" * 200 + b'"}':
            if self._release.wait(every):
                return
            yield bytes([byte])

    # --- steering --------------------------------------------------------------------------------
    def behave(self, mode: str, delay: float = 0.0) -> None:
        assert mode in MODES, mode
        self.mode, self.delay = mode, delay

    def fail_next(self, mode: str, times: int = 1, delay: float = 0.0) -> None:  # type: ignore[override]
        assert mode in MODES, mode
        super().fail_next(0, mode, times=times, delay=delay)

    def calls(self, resource: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if resource is None or r.path.startswith(f"/{resource}/"))

    def __exit__(self, *exc):
        self._release.set()  # wake hanging handlers so the server can stop
        super().__exit__(*exc)


def _json(status: int, body) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def lookup_config(standin: BusinessStandIn, **extra) -> dict:
    """App settings that send every lookup to the stand-in."""
    paths = {"MEMBER_API": "members", "COVERAGE_API": "coverage", "PRICING_API": "coupons",
             "INVENTORY_API": "inventory", "CALENDAR_API": "calendar"}
    return {**{f"{p}_URL": f"{standin.url}/{r}" for p, r in paths.items()}, **extra}
