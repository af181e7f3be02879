"""Wires the Flow domain onto the app: the flow registry, the session store, the engine."""
from __future__ import annotations

import config
from flows.catalog import CATALOG
from flows.contacts import Contacts
from flows.engine import Engine
from flows.intents import Intents
from flows.lookups import Lookups, specs_from_config
from flows.recovery import Ladder, QuietHours, parse_duration
from flows.registry import Registry
from flows.sessions import SessionStore
from flows.slots import SlotHolds
from workers.hooks import RecoveryHooks


def build_deps(app) -> dict:
    """What handlers may ask for by name (``ctx.deps["lookups"]["members"]``)."""
    redis, metrics = app.extensions["redis"], app.extensions["metrics"]
    lookups = Lookups(specs_from_config(app.config, config.server()["port"]), redis, metrics=metrics)
    app.extensions["lookups"] = lookups  # the re-check job reaches them here
    return {"lookups": lookups, "slots": SlotHolds(redis, app.config["SLOT_HOLD_SECONDS"]),
            "metrics": metrics}


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
    app.extensions["contacts"] = Contacts(app.extensions["redis"], cfg["STOP_WORDS"])
    app.extensions["intents"] = Intents(extra_stop_words=cfg["STOP_WORDS"])
    default_ladder = Ladder.from_spec(cfg["RECOVERY_STEPS"])
    default_quiet = QuietHours.parse(cfg["QUIET_HOURS"])

    def _flow(flow):
        return registry.get(flow) if isinstance(flow, str) else flow

    # A flow may carry its own ladder (``flow.recovery``, a Ladder) and quiet hours
    # (``flow.quiet_hours``, e.g. "20:00-09:00"); the rest share the configured ones.
    def ladders(flow):
        return getattr(_flow(flow), "recovery", None) or default_ladder

    def quiet_hours(flow):
        return QuietHours.parse(getattr(_flow(flow), "quiet_hours", None)) or default_quiet

    settings = {
        "start": cfg["RECOVERY_START"],
        "quiet": quiet_hours,
        "timezone": cfg["DEFAULT_TIMEZONE"],
        "give_up_after": parse_duration(cfg["RECOVERY_GIVE_UP_AFTER"]),
    }
    if settings["start"] not in ("opened", "sent"):
        raise RuntimeError("RECOVERY_START must be 'opened' or 'sent'")
    app.extensions["ladders"] = ladders
    app.extensions["recovery_settings"] = settings
    hooks = RecoveryHooks(app.extensions["redis"], sessions, ladders, settings)
    app.extensions["recovery_hooks"] = hooks
    app.extensions["engine"] = Engine(
        sessions, build_deps(app), deadline_seconds=cfg["FLOW_DEADLINE_SECONDS"],
        max_reply_bytes=cfg["FLOW_MAX_RESPONSE_BYTES"], hooks=hooks,
    )
