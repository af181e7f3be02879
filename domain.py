"""Wires the Flow domain onto the app: the flow registry, the session store, the engine."""
from __future__ import annotations

import logging

import config
from examples import demo_api
from config import ConfigError, is_development
import examples as catalog
from stores.contacts import Contacts
from flows.engine import Engine
from flows.intents import Intents
from validation.lookups import POLICIES, Lookups, specs_from_config
from flows.recovery import Ladder, QuietHours, parse_duration
from flows.registry import Registry
from flows.sessions import SessionStore
from validation.slots import SlotHolds
from workers.hooks import RecoveryHooks

log = logging.getLogger("flowgate.domain")


def build_deps(app) -> dict:
    """What handlers may ask for by name (``ctx.deps["lookups"]["members"]``)."""
    redis, metrics, cfg = app.extensions["redis"], app.extensions["metrics"], app.config
    demo = config.demo_flows(cfg)
    # Development's demo lookups are answered in-process (blueprints/demo_api.py), never by a
    # request to this app: that would take one of its own gunicorn threads.
    base = cfg["LOOKUP_BASE_URL"] or (demo_api.DEMO_BASE_URL if demo and is_development(cfg) else None)
    specs = specs_from_config(cfg, base)
    for spec in specs:
        if spec.policy not in POLICIES:
            raise ConfigError(f"{config.LOOKUPS[spec.name][0]}_POLICY={spec.policy!r} is not a policy "
                              f"(use {' or '.join(POLICIES)})")
    _check_lookup_urls(cfg, app.extensions["flows"], specs)
    lookups = Lookups(specs, redis, metrics=metrics)
    if demo:
        lookups.http.mount("demo://", demo_api.transport())
    app.extensions["lookups"] = lookups  # the re-check job reaches them here
    return {"lookups": lookups, "slots": SlotHolds(redis, app.config["SLOT_HOLD_SECONDS"]),
            "metrics": metrics}


def _check_lookup_urls(cfg, registry, specs) -> None:
    """A served flow whose lookup has no URL: production refuses to start, development says so."""
    urls = {spec.name: spec.url for spec in specs}
    for flow in registry:
        for name in flow.lookups:
            if urls.get(name):
                continue
            variable = f"{config.LOOKUPS[name][0]}_URL"
            problem = f"flow {flow.name} looks up {name}, but {variable} is not set"
            fix = f"set {variable}, or LOOKUP_BASE_URL for every lookup"
            if not is_development(cfg):
                raise ConfigError(f"{problem} ({fix})")
            log.warning("%s: its lookups will fail (%s)", problem, fix)


def _parsed(cfg, name: str, parse):
    try:
        return parse(cfg[name])
    except ValueError as exc:
        raise ConfigError(f"{name}={cfg[name]!r} is not valid: {exc} (see the README's configuration table)") from None


def init_app(app) -> None:
    cfg = app.config
    if cfg["FLOW_TOKEN_POLICY"] not in ("open", "strict"):
        raise ConfigError(f"FLOW_TOKEN_POLICY={cfg['FLOW_TOKEN_POLICY']!r} is not a policy (use open or strict)")
    if cfg["RECOVERY_START"] not in ("opened", "sent"):
        raise ConfigError(f"RECOVERY_START={cfg['RECOVERY_START']!r} is not a start (use opened or sent)")
    registry = Registry(catalog.served(config.demo_flows(cfg)))
    sessions = SessionStore(
        app.extensions["redis"], lifetime=cfg["FLOW_SESSION_LIFETIME"],
        strict=cfg["FLOW_TOKEN_POLICY"] == "strict",
    )
    app.extensions["flows"] = registry
    app.extensions["sessions"] = sessions
    app.extensions["contacts"] = Contacts(app.extensions["redis"], cfg["STOP_WORDS"])
    app.extensions["intents"] = Intents(extra_stop_words=cfg["STOP_WORDS"])
    default_ladder = _parsed(cfg, "RECOVERY_STEPS", Ladder.from_spec)
    default_quiet = _parsed(cfg, "QUIET_HOURS", QuietHours.parse)

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
        "give_up_after": _parsed(cfg, "RECOVERY_GIVE_UP_AFTER", parse_duration),
    }
    app.extensions["ladders"] = ladders
    app.extensions["recovery_settings"] = settings
    hooks = RecoveryHooks(app.extensions["redis"], sessions, ladders, settings)
    app.extensions["recovery_hooks"] = hooks
    app.extensions["engine"] = Engine(
        sessions, build_deps(app), deadline_seconds=cfg["FLOW_DEADLINE_SECONDS"],
        max_reply_bytes=cfg["FLOW_MAX_RESPONSE_BYTES"], hooks=hooks,
    )
