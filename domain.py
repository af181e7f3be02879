"""Wires the Flow domain onto the app: the flow registry, the session store, the engine."""
from __future__ import annotations

from flows.catalog import CATALOG
from flows.engine import Engine
from flows.members import StaticMembers
from flows.registry import Registry
from flows.sessions import SessionStore


def build_deps(app) -> dict:
    """What handlers may ask for by name (``ctx.deps["members"]``)."""
    return {"members": StaticMembers()}


def init_app(app) -> None:
    cfg = app.config
    if cfg["FLOW_TOKEN_POLICY"] not in ("open", "strict"):
        raise RuntimeError("FLOW_TOKEN_POLICY must be 'open' or 'strict'")
    registry = Registry(CATALOG)
    sessions = SessionStore(
        app.extensions["redis"], lifetime=cfg["FLOW_SESSION_LIFETIME"],
        strict=cfg["FLOW_TOKEN_POLICY"] == "strict",
    )
    app.extensions["flows"] = registry
    app.extensions["sessions"] = sessions
    app.extensions["engine"] = Engine(
        sessions, build_deps(app), deadline_seconds=cfg["FLOW_DEADLINE_SECONDS"],
        max_reply_bytes=cfg["FLOW_MAX_RESPONSE_BYTES"],
    )
