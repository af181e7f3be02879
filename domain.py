"""Wires the Flow domain onto the app: the flow registry, the session store, the engine."""
from __future__ import annotations

import logging

import config
from config import ConfigError, is_development
from flows import loader
from stores.contacts import Contacts
from flows.drift import DriftLog
from flows.engine import Engine
from flows.intents import Intents
from validation.lookups import POLICIES, Lookups, specs_from_config
from flows.on_meta import FlowIds, StatusCache
from flows.recovery import Ladder, QuietHours, parse_duration
from flows.registry import Registry
from records import Records
from flows.sessions import SessionStore
from validation.slots import SlotHolds
from workers.hooks import RecoveryHooks

log = logging.getLogger("flowgate.domain")


def build_deps(app) -> dict:
    """What handlers reach through their context: ``ctx.lookup(name, value)``, ``ctx.slots``."""
    redis, metrics, cfg = app.extensions["redis"], app.extensions["metrics"], app.config
    demo = config.demo_flows(cfg)
    demo_api = None
    if demo:
        from examples import demo_api
    # Development's demo lookups are answered in-process (examples/demo_api.py), never by a
    # request to this app: that would take one of its own gunicorn threads.
    base = cfg["LOOKUP_BASE_URL"] or (demo_api.DEMO_BASE_URL if demo and is_development(cfg) else None)
    declared = {lookup.name: lookup for lookup in _declared(app.extensions["flows"])}
    specs = specs_from_config(cfg, declared.values(), base)
    for spec in specs:
        if spec.policy not in POLICIES:
            raise ConfigError(f"{declared[spec.name].settings}_POLICY={spec.policy!r} is not a policy "
                              f"(use {' or '.join(POLICIES)})")
    _check_lookup_urls(cfg, app.extensions["flows"], specs, declared)
    lookups = Lookups(specs, redis, metrics=metrics)
    if demo_api is not None:
        lookups.http.mount("demo://", demo_api.transport())
    app.extensions["lookups"] = lookups  # the re-check job reaches them here
    return {"lookups": lookups, "slots": SlotHolds(redis, app.config["SLOT_HOLD_SECONDS"]),
            "metrics": metrics}


def _declared(registry) -> list:
    try:
        return loader.lookups_of(registry)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_lookup_urls(cfg, registry, specs, declared) -> None:
    """A served flow whose lookup has no URL: production refuses to start, development says so."""
    urls = {spec.name: spec.url for spec in specs}
    for flow in registry:
        for name in flow.lookups:
            if urls.get(name):
                continue
            variable = f"{declared[name].settings}_URL"
            problem = f"flow {flow.name} looks up {name}, but {variable} is not set"
            fix = f"set {variable}, or LOOKUP_BASE_URL for every lookup"
            if not is_development(cfg):
                raise ConfigError(f"{problem} ({fix})")
            log.warning("%s: its lookups will fail (%s)", problem, fix)


def _parsed(cfg, name: str, parse):
    try:
        return parse(cfg[name])
    except ValueError as exc:
        raise ConfigError(f"{name}={cfg[name]!r} is not valid: {exc} (see "
                          "the README's configuration table)") from None


def _served(cfg) -> list:
    """The business's flows (FLOWS_PACKAGE) and, with DEMO_FLOWS, the examples."""
    try:
        return loader.served(cfg["FLOWS_PACKAGE"], config.demo_flows(cfg))
    except loader.NoSuchPackage as exc:
        raise ConfigError(f"FLOWS_PACKAGE={cfg['FLOWS_PACKAGE']!r}: no such package here "
                          f"(the folder of your flows, importable from {exc.args[0]!r})") from None


def init_records(app) -> None:
    """The records store (records/): submissions, the consent ledger, the message log. Production
    needs DATABASE_URL (a dyno's disk is wiped at every restart); development keeps a SQLite file
    under instance/ and creates its tables itself. PostgreSQL is migrated by the release phase."""
    cfg = app.config
    url = cfg.get("DATABASE_URL")
    if not url:
        if not is_development(cfg):
            raise ConfigError("DATABASE_URL is not set (add Postgres: heroku addons:create "
                              "heroku-postgresql; a dyno's disk is wiped at every restart, so "
                              "production keeps no SQLite file)")
        url = cfg["DATABASE_URL"] = config.development_database(cfg["INSTANCE_DIR"])
    try:
        records = Records.open(url)
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL is not usable: {exc} (use postgres://user:pass@host/db, or "
                          "sqlite:///path for a single machine)") from None
    app.extensions["records"] = records


def prepare_records(app) -> None:
    """A SQLite file is on this machine: every process may create or upgrade it (under a file
    lock), once every setting was accepted (a refused start writes nothing and logs one line)."""
    records = app.extensions["records"]
    if records.backend == "sqlite":
        log.info("records: %s", records.upgrade())


def init_app(app) -> None:
    cfg = app.config
    if cfg["FLOW_TOKEN_POLICY"] not in ("open", "strict"):
        raise ConfigError(f"FLOW_TOKEN_POLICY={cfg['FLOW_TOKEN_POLICY']!r} is "
                          "not a policy (use open or strict)")
    if cfg["RECOVERY_START"] not in ("opened", "sent"):
        raise ConfigError(f"RECOVERY_START={cfg['RECOVERY_START']!r} is not a start (use opened or sent)")
    registry = Registry(_served(cfg))
    sessions = SessionStore(
        app.extensions["redis"], lifetime=cfg["FLOW_SESSION_LIFETIME"],
        strict=cfg["FLOW_TOKEN_POLICY"] == "strict",
    )
    app.extensions["flows"] = registry
    app.extensions["sessions"] = sessions
    app.extensions["contacts"] = Contacts(app.extensions["redis"], ledger=app.extensions["records"].consent)
    app.extensions["intents"] = Intents(extra_stop_words=cfg["STOP_WORDS"])
    default_ladder = _parsed(cfg, "RECOVERY_STEPS", Ladder.from_spec)
    default_quiet = _parsed(cfg, "QUIET_HOURS", QuietHours.parse)

    # A flow may declare its own ladder (``Flow(recovery="1h,23h")``) and quiet hours
    # (``Flow(quiet_hours="20:00-09:00")``); the rest share the configured ones. Parsed once
    # here, so a bad declaration stops start-up instead of a recovery job.
    own_ladders, own_quiet = {}, {}
    for flow in registry:
        try:
            if flow.recovery:
                own_ladders[flow.name] = Ladder.from_spec(flow.recovery)
            if flow.quiet_hours:
                own_quiet[flow.name] = QuietHours.parse(flow.quiet_hours)
        except ValueError as exc:
            raise ConfigError(f"flow {flow.name}: its recovery or quiet_hours is not valid: {exc}") from None

    def _name(flow):
        return flow if isinstance(flow, str) else getattr(flow, "name", None)

    def ladders(flow):
        return own_ladders.get(_name(flow)) or default_ladder

    def quiet_hours(flow):
        return own_quiet.get(_name(flow)) or default_quiet

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
        drift_log=DriftLog(app.extensions["redis"]),
        check_replies=(is_development(cfg) if cfg.get("FLOW_REPLY_CHECK") is None
                       else bool(cfg["FLOW_REPLY_CHECK"])),
    )
    # The flows on Meta, per environment (the WABA): Flow IDs `flask flows deploy` remembers for
    # sending, and the last status read for the dashboard (flows/on_meta.py).
    app.extensions["flow_ids"] = FlowIds(app.extensions["redis"], cfg["WHATSAPP_BUSINESS_ACCOUNT_ID"])
    app.extensions["meta_status"] = StatusCache(app.extensions["redis"], cfg["WHATSAPP_BUSINESS_ACCOUNT_ID"])
