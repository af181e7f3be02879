"""Every setting Flowgate reads, in one place.

This is the only module that looks at the environment. ``load(environ)`` turns it into the flat
mapping that ``create_app()`` puts on ``app.config``; tests skip the environment and pass a dict.
Heroku's unprefixed names (``PORT``, ``REDIS_URL``, ``WEB_CONCURRENCY``) are mapped here and
nowhere else. A setting that is missing or wrong is a ``ConfigError``, whoever finds it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Meta cuts an endpoint request at 10 s; the budget must leave room for the network both ways.
MAX_DEADLINE_SECONDS = 8.0

# A business API a flow declares (flows.registry.Lookup) has its settings under its prefix,
# which ends in _API: <PREFIX>_URL, _AUTH (the whole Authorization header value), _POLICY,
# _TIMEOUT and _CACHE_TTL. load() reads every such variable, whichever flows are served.
LOOKUP_SETTING = re.compile(r"([A-Z][A-Z0-9_]*_API)_(URL|AUTH|POLICY|TIMEOUT|CACHE_TTL)")
LOOKUP_PARTS = ("URL", "AUTH", "POLICY", "TIMEOUT", "CACHE_TTL")


class ConfigError(RuntimeError):
    """This configuration cannot run: the message is one line, ``<what is wrong> (<how to fix it>)``.

    Raised by config validation anywhere (loading, storage, security, domain, messaging); the
    entry points print it as ``Error: <message>`` and exit non-zero, never with a traceback:
    ``cli/`` for every flask command (the worker too), ``wsgi.py`` and ``gunicorn.conf.py`` for
    gunicorn.
    """


class _Env:
    """The environment as load() reads it, remembering the names read: a value that does not
    parse is reported by its variable's name, and the README test lists every name read."""

    def __init__(self, env):
        self.env = env
        self.read: list[str] = []

    def get(self, name: str, default=None):
        self.read.append(name)
        return self.env.get(name, default)

    def __getitem__(self, name: str):
        self.read.append(name)
        return self.env[name]


def _parsed(env: _Env, read):
    """``read(env)``, with a value that does not parse turned into a ConfigError naming it."""
    try:
        return read(env)
    except ValueError:
        name = env.read[-1]
        raise ConfigError(f"{name}={str(env.env.get(name))[:40]!r} is not a valid number "
                          "(use a number like its default in the README's configuration table)") from None


def environment_names() -> set[str]:
    """Every variable load() and server() read."""
    env = _Env({})
    load(env)
    server(env)
    return set(env.read) | {f"<NAME>_API_{part}" for part in LOOKUP_PARTS}


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(value: str | None, default: int) -> int:
    return default if value in (None, "") else int(value)


def _float(value: str | None, default: float) -> float:
    return default if value in (None, "") else float(value)


def _mapping(value: str | None) -> dict:
    """'a=1,b=2' → {'a': '1', 'b': '2'}."""
    pairs = (item.split("=", 1) for item in (value or "").split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def _ints(value: str | None, default: tuple) -> tuple:
    # "10,30,120" -> (10, 30, 120): retry waits in seconds.
    return default if value in (None, "") else tuple(int(v) for v in value.split(",") if v.strip())


def database_url(value: str | None) -> str | None:
    """Heroku Postgres hands out ``postgres://``, a scheme SQLAlchemy refuses: named here as the
    psycopg 3 driver's, like ``postgresql://``."""
    value = (value or "").strip()
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix):]
    return value or None


def development_database(instance_dir: str) -> str:
    """``make run``'s records: a SQLite file next to the embedded Redis, created on first start."""
    return f"sqlite:///{Path(instance_dir) / 'flowgate.sqlite3'}"


def _pem(value: str | None) -> str | None:
    # Heroku config vars are one line: tolerate literal "\n" escapes in pasted PEM text.
    if not value:
        return None
    return value.replace("\\n", "\n").strip() + "\n"


def defaults() -> dict:
    """The configuration with nothing set: what a test starts from."""
    return {
        "APP_ENV": "production",
        "INSTANCE_DIR": str(ROOT / "instance"),
        "REDIS_URL": None,
        "REDIS_SSL_NO_VERIFY": True,
        # Longest wait for Redis within an HTTP request (redis_budget.py); workers keep 5 s.
        "REDIS_REQUEST_TIMEOUT_SECONDS": 1.0,
        "FLOW_PRIVATE_KEY": None,
        "FLOW_PRIVATE_KEY_PATH": None,
        "FLOW_PRIVATE_KEY_PASSPHRASE": None,
        "FLOW_PRIVATE_KEY_PREVIOUS": None,
        "FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE": None,
        "WHATSAPP_APP_SECRET": None,
        "WHATSAPP_APP_SECRET_PREVIOUS": None,
        "FLOW_TOKEN_POLICY": "open",
        "FLOW_SESSION_LIFETIME": 3 * 24 * 3600,
        "FLOW_MAX_REQUEST_BYTES": 1024 * 1024,
        "FLOW_MAX_RESPONSE_BYTES": 64 * 1024,
        # Each reply checked against the Flow JSON (undeclared data keys, routing); None: in development.
        "FLOW_REPLY_CHECK": None,
        "FLOW_DEADLINE_SECONDS": 3.0,
        "WHATSAPP_API_BASE": "https://graph.facebook.com",
        "WHATSAPP_API_VERSION": "v23.0",
        "WHATSAPP_ACCESS_TOKEN": None,
        "WHATSAPP_PHONE_NUMBER_ID": None,
        # Read by flask doctor only: the WABA (webhook subscription, templates) and the Meta app
        # (its webhook fields, read with the app token WHATSAPP_APP_ID|WHATSAPP_APP_SECRET).
        "WHATSAPP_BUSINESS_ACCOUNT_ID": None,
        "WHATSAPP_APP_ID": None,
        "WASENDER_API_BASE": "https://www.wasenderapi.com/api",
        "WASENDER_API_KEY": None,
        "WASENDER_RATE": "1/min",
        "WASENDER_DAILY_CAP": 50,  # the trial plan's sends a day (0: none); shared by all workers
        "WASENDER_WEBHOOK_SECRET": None,
        "HANDOFF_FORWARD_URL": None,
        "HANDOFF_FORWARD_SECRET": None,
        "FOLLOWUP_CHANNEL": None,
        "FLOW_TEMPLATES": {},
        "CONTACT_INFO_TEMPLATE": None,  # "name:lang": a template with a REQUEST_CONTACT_INFO button
        "FLOW_IDS": {},
        "RECOVERY_STEPS": "15m,6h,23h",
        "RECOVERY_START": "opened",
        "RECOVERY_GIVE_UP_AFTER": "24h",
        "QUIET_HOURS": None,
        "DEFAULT_TIMEZONE": "UTC",
        "STOP_WORDS": ("stop", "unsubscribe", "cancel", "opt out", "optout", "parar", "pare", "baja"),
        "LOG_LEVEL": "INFO",
        # Web processes add metrics up in memory and write them this often (metrics/buffer.py).
        "METRICS_FLUSH_SECONDS": 1.0,
        # The five demo flows and their backend (/demo-api); None: on in development only.
        "DEMO_FLOWS": None,
        # The package holding the business's own flows (flows/loader.py).
        "FLOWS_PACKAGE": "business_flows",
        # Lookups (flows/lookups.py). No base URL: the demo backend in-process (DEMO_FLOWS, development).
        "LOOKUP_BASE_URL": None,
        "LOOKUP_TIMEOUT_SECONDS": 1.0,
        "LOOKUP_CACHE_TTL": 300,
        "LOOKUP_NEGATIVE_TTL": 30,
        "LOOKUP_STALE_MAX_AGE": 3600,
        "LOOKUP_BREAKER_FAILURES": 5,
        "LOOKUP_BREAKER_SECONDS": 30,
        "LOOKUP_MAX_BODY_BYTES": 64 * 1024,
        "SLOT_HOLD_SECONDS": 300.0,
        "DASHBOARD_PASSWORD": None,
        # Proxies in front that append to X-Forwarded-For (Heroku's router: 1); the password
        # throttle counts the address the outermost one saw (blueprints/auth.py).
        "TRUSTED_PROXY_HOPS": 0,
        "SECRET_KEY": None,
        "PLAYGROUND_URL": "http://127.0.0.1:5000",
        # Webhooks, completions and confirmations (issue 4).
        "WHATSAPP_VERIFY_TOKEN": None,
        "API_TOKEN": None,
        "COMPLETION_FORWARD_URL": None,
        "COMPLETION_FORWARD_SECRET": None,
        "CONFIRMATION_TEXT": "Thank you! We have received your answers.",
        "WEBHOOK_DEDUPE_SECONDS": 8 * 24 * 3600,  # longer than Meta's 7-day retry window
        # The records store (records/): PostgreSQL in production; None in development means a SQLite
        # file under INSTANCE_DIR (filled in by load()).
        "DATABASE_URL": None,
        "RECORDS_RETENTION_DAYS": 0,  # submissions and the message log; 0 keeps them for ever
        "JOB_MAX_RETRIES": 5,
        "JOB_RETRY_BACKOFF": (10, 30, 120, 600, 1800),
        "EFFECT_LEASE_SECONDS": 90,  # longer than a job may run (60 s), so a live job keeps it
        "RQ_MAINTENANCE_INTERVAL": 600,
        "RQ_JOB_MONITORING_INTERVAL": 30,
        "RQ_WORKER_TTL": 420,
        # Follow-up media after a completion (issue 9): a receipt sent after the confirmation.
        "RECEIPT_IMAGE_URL": None,
        "RECEIPT_PDF": False,
        "RECEIPT_CAPTION": "Your receipt",
        "PUBLIC_BASE_URL": None,
        "MEDIA_URL_TTL": 24 * 3600,
        "RQ_HEARTBEAT_GRACE": 60,  # RQ's own fixed grace after a job's last heartbeat
        "WORKER_PROCESSES": 1,  # `flask worker` processes per dyno (workers/pool.py)
        "RQ_FORK_PER_JOB": False,  # jobs run in the worker process (workers/queues.py)
    }


def load(environ: os._Environ | dict | None = None) -> dict:
    """Read the environment once; unknown variables are ignored. A value that does not parse
    is a ConfigError."""
    env = environ if isinstance(environ, _Env) else _Env(os.environ if environ is None else environ)
    return _parsed(env, _load)


def _load(env: _Env) -> dict:
    cfg = defaults()
    cfg.update(
        APP_ENV=env.get("APP_ENV", "production").strip().lower(),
        INSTANCE_DIR=env.get("FLOWGATE_INSTANCE_DIR") or cfg["INSTANCE_DIR"],
        # REDIS_TLS_URL is the legacy Heroku name; REDIS_URL wins when both exist.
        REDIS_URL=env.get("REDIS_URL") or env.get("REDIS_TLS_URL") or None,
        REDIS_SSL_NO_VERIFY=_bool(env.get("REDIS_SSL_NO_VERIFY"), True),
        REDIS_REQUEST_TIMEOUT_SECONDS=_float(env.get("REDIS_REQUEST_TIMEOUT_SECONDS"),
                                             cfg["REDIS_REQUEST_TIMEOUT_SECONDS"]),
        FLOW_PRIVATE_KEY=_pem(env.get("FLOW_PRIVATE_KEY")),
        FLOW_PRIVATE_KEY_PATH=env.get("FLOW_PRIVATE_KEY_PATH") or None,
        FLOW_PRIVATE_KEY_PASSPHRASE=env.get("FLOW_PRIVATE_KEY_PASSPHRASE") or None,
        FLOW_PRIVATE_KEY_PREVIOUS=_pem(env.get("FLOW_PRIVATE_KEY_PREVIOUS")),
        FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE=env.get("FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE") or None,
        WHATSAPP_APP_SECRET=env.get("WHATSAPP_APP_SECRET") or None,
        WHATSAPP_APP_SECRET_PREVIOUS=env.get("WHATSAPP_APP_SECRET_PREVIOUS") or None,
        FLOW_TOKEN_POLICY=env.get("FLOW_TOKEN_POLICY", "open").strip().lower(),
        FLOW_SESSION_LIFETIME=_int(env.get("FLOW_SESSION_LIFETIME"), cfg["FLOW_SESSION_LIFETIME"]),
        FLOW_MAX_REQUEST_BYTES=_int(env.get("FLOW_MAX_REQUEST_BYTES"), cfg["FLOW_MAX_REQUEST_BYTES"]),
        FLOW_MAX_RESPONSE_BYTES=_int(env.get("FLOW_MAX_RESPONSE_BYTES"), cfg["FLOW_MAX_RESPONSE_BYTES"]),
        FLOW_REPLY_CHECK=_bool(env.get("FLOW_REPLY_CHECK"), None),
        FLOW_DEADLINE_SECONDS=min(
            _float(env.get("FLOW_DEADLINE_SECONDS"), cfg["FLOW_DEADLINE_SECONDS"]), MAX_DEADLINE_SECONDS
        ),
        WHATSAPP_API_BASE=env.get("WHATSAPP_API_BASE") or cfg["WHATSAPP_API_BASE"],
        WHATSAPP_API_VERSION=env.get("WHATSAPP_API_VERSION") or cfg["WHATSAPP_API_VERSION"],
        WHATSAPP_ACCESS_TOKEN=env.get("WHATSAPP_ACCESS_TOKEN") or None,
        WHATSAPP_PHONE_NUMBER_ID=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
        WHATSAPP_BUSINESS_ACCOUNT_ID=env.get("WHATSAPP_BUSINESS_ACCOUNT_ID") or None,
        WHATSAPP_APP_ID=env.get("WHATSAPP_APP_ID") or None,
        WASENDER_API_BASE=env.get("WASENDER_API_BASE") or cfg["WASENDER_API_BASE"],
        WASENDER_API_KEY=env.get("WASENDER_API_KEY") or None,
        WASENDER_RATE=env.get("WASENDER_RATE") or cfg["WASENDER_RATE"],
        WASENDER_DAILY_CAP=max(0, _int(env.get("WASENDER_DAILY_CAP"), cfg["WASENDER_DAILY_CAP"])),
        WASENDER_WEBHOOK_SECRET=env.get("WASENDER_WEBHOOK_SECRET") or None,
        HANDOFF_FORWARD_URL=env.get("HANDOFF_FORWARD_URL") or None,
        HANDOFF_FORWARD_SECRET=env.get("HANDOFF_FORWARD_SECRET") or None,
        FOLLOWUP_CHANNEL=(env.get("FOLLOWUP_CHANNEL") or "").strip().lower() or None,
        FLOW_TEMPLATES={k: tuple((v.split(":", 1) + ["en_US"])[:2])
                        for k, v in _mapping(env.get("FLOW_TEMPLATES")).items()},
        FLOW_IDS=_mapping(env.get("FLOW_IDS")),
        CONTACT_INFO_TEMPLATE=(env.get("CONTACT_INFO_TEMPLATE") or "").strip() or None,
        RECOVERY_STEPS=env.get("RECOVERY_STEPS") or cfg["RECOVERY_STEPS"],
        RECOVERY_START=(env.get("RECOVERY_START") or cfg["RECOVERY_START"]).strip().lower(),
        RECOVERY_GIVE_UP_AFTER=env.get("RECOVERY_GIVE_UP_AFTER") or cfg["RECOVERY_GIVE_UP_AFTER"],
        QUIET_HOURS=env.get("QUIET_HOURS") or None,
        DEFAULT_TIMEZONE=env.get("DEFAULT_TIMEZONE") or cfg["DEFAULT_TIMEZONE"],
        STOP_WORDS=tuple(w.strip().lower() for w in env["STOP_WORDS"].split(",") if w.strip())
        if env.get("STOP_WORDS") else cfg["STOP_WORDS"],
        LOG_LEVEL=env.get("LOG_LEVEL", "INFO").upper(),
        METRICS_FLUSH_SECONDS=_float(env.get("METRICS_FLUSH_SECONDS"), cfg["METRICS_FLUSH_SECONDS"]),
        DEMO_FLOWS=_bool(env.get("DEMO_FLOWS"), None),
        FLOWS_PACKAGE=(env.get("FLOWS_PACKAGE") or "").strip() or cfg["FLOWS_PACKAGE"],
        LOOKUP_BASE_URL=env.get("LOOKUP_BASE_URL") or None,
        LOOKUP_TIMEOUT_SECONDS=_float(env.get("LOOKUP_TIMEOUT_SECONDS"), cfg["LOOKUP_TIMEOUT_SECONDS"]),
        LOOKUP_CACHE_TTL=_int(env.get("LOOKUP_CACHE_TTL"), cfg["LOOKUP_CACHE_TTL"]),
        LOOKUP_NEGATIVE_TTL=_int(env.get("LOOKUP_NEGATIVE_TTL"), cfg["LOOKUP_NEGATIVE_TTL"]),
        LOOKUP_STALE_MAX_AGE=_int(env.get("LOOKUP_STALE_MAX_AGE"), cfg["LOOKUP_STALE_MAX_AGE"]),
        LOOKUP_BREAKER_FAILURES=_int(env.get("LOOKUP_BREAKER_FAILURES"), cfg["LOOKUP_BREAKER_FAILURES"]),
        LOOKUP_BREAKER_SECONDS=_int(env.get("LOOKUP_BREAKER_SECONDS"), cfg["LOOKUP_BREAKER_SECONDS"]),
        LOOKUP_MAX_BODY_BYTES=_int(env.get("LOOKUP_MAX_BODY_BYTES"), cfg["LOOKUP_MAX_BODY_BYTES"]),
        SLOT_HOLD_SECONDS=_float(env.get("SLOT_HOLD_SECONDS"), cfg["SLOT_HOLD_SECONDS"]),
        DASHBOARD_PASSWORD=env.get("DASHBOARD_PASSWORD") or None,
        # Heroku sets DYNO on every dyno, and its router is always in front of a web dyno.
        TRUSTED_PROXY_HOPS=max(0, _int(env.get("TRUSTED_PROXY_HOPS"), 1 if env.get("DYNO") else 0)),
        SECRET_KEY=env.get("SECRET_KEY") or None,
        # The playground calls this app's own endpoint; only loopback is ever accepted.
        PLAYGROUND_URL=env.get("PLAYGROUND_URL") or f"http://127.0.0.1:{_int(env.get('PORT'), 5000)}",
        WHATSAPP_VERIFY_TOKEN=env.get("WHATSAPP_VERIFY_TOKEN") or None,
        API_TOKEN=env.get("API_TOKEN") or None,
        COMPLETION_FORWARD_URL=env.get("COMPLETION_FORWARD_URL") or None,
        COMPLETION_FORWARD_SECRET=env.get("COMPLETION_FORWARD_SECRET") or None,
        CONFIRMATION_TEXT=env.get("CONFIRMATION_TEXT") or cfg["CONFIRMATION_TEXT"],
        WEBHOOK_DEDUPE_SECONDS=_int(env.get("WEBHOOK_DEDUPE_SECONDS"), cfg["WEBHOOK_DEDUPE_SECONDS"]),
        DATABASE_URL=database_url(env.get("DATABASE_URL")),
        RECORDS_RETENTION_DAYS=max(0, _int(env.get("RECORDS_RETENTION_DAYS"), cfg["RECORDS_RETENTION_DAYS"])),
        JOB_MAX_RETRIES=_int(env.get("JOB_MAX_RETRIES"), cfg["JOB_MAX_RETRIES"]),
        JOB_RETRY_BACKOFF=_ints(env.get("JOB_RETRY_BACKOFF"), cfg["JOB_RETRY_BACKOFF"]),
        EFFECT_LEASE_SECONDS=_int(env.get("EFFECT_LEASE_SECONDS"), cfg["EFFECT_LEASE_SECONDS"]),
        RQ_MAINTENANCE_INTERVAL=_int(env.get("RQ_MAINTENANCE_INTERVAL"), cfg["RQ_MAINTENANCE_INTERVAL"]),
        RQ_JOB_MONITORING_INTERVAL=_int(env.get("RQ_JOB_MONITORING_INTERVAL"),
                                        cfg["RQ_JOB_MONITORING_INTERVAL"]),
        RQ_WORKER_TTL=_int(env.get("RQ_WORKER_TTL"), cfg["RQ_WORKER_TTL"]),
        RECEIPT_IMAGE_URL=env.get("RECEIPT_IMAGE_URL") or None,
        RECEIPT_PDF=_bool(env.get("RECEIPT_PDF"), False),
        RECEIPT_CAPTION=env.get("RECEIPT_CAPTION") or cfg["RECEIPT_CAPTION"],
        PUBLIC_BASE_URL=env.get("PUBLIC_BASE_URL") or None,
        MEDIA_URL_TTL=_int(env.get("MEDIA_URL_TTL"), cfg["MEDIA_URL_TTL"]),
        RQ_HEARTBEAT_GRACE=_int(env.get("RQ_HEARTBEAT_GRACE"), cfg["RQ_HEARTBEAT_GRACE"]),
        WORKER_PROCESSES=max(1, _int(env.get("WORKER_PROCESSES"), cfg["WORKER_PROCESSES"])),
        RQ_FORK_PER_JOB=_bool(env.get("RQ_FORK_PER_JOB"), cfg["RQ_FORK_PER_JOB"]),
    )
    if cfg["LOG_LEVEL"] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL={cfg['LOG_LEVEL']!r} is not a level (use "
                          "DEBUG, INFO, WARNING or ERROR)")
    for prefix in sorted({m.group(1) for m in map(LOOKUP_SETTING.fullmatch, env.env) if m}):
        cfg[f"{prefix}_URL"] = env.get(f"{prefix}_URL") or None
        cfg[f"{prefix}_AUTH"] = env.get(f"{prefix}_AUTH") or None
        cfg[f"{prefix}_POLICY"] = (env.get(f"{prefix}_POLICY") or "").strip().lower() or None
        cfg[f"{prefix}_TIMEOUT"] = _float(env.get(f"{prefix}_TIMEOUT"), None)
        cfg[f"{prefix}_CACHE_TTL"] = _int(env.get(f"{prefix}_CACHE_TTL"), None)
    return cfg


def server(environ: os._Environ | dict | None = None) -> dict:
    """What gunicorn.conf.py needs: the port and the process counts Heroku hands us."""
    env = environ if isinstance(environ, _Env) else _Env(os.environ if environ is None else environ)
    return _parsed(env, _server)


def _server(env: _Env) -> dict:
    return {
        "port": _int(env.get("PORT"), 5000),
        "workers": _int(env.get("WEB_CONCURRENCY"), 2),
        # Threads wait on lookups: sized so 2 processes keep ~130 waiting (docs/benchmarks.md).
        "threads": _int(env.get("GUNICORN_THREADS"), 64),
        "production": env.get("APP_ENV", "production").strip().lower() == "production",
        # `make run` opens the dashboard without a password and skips signatures: loopback only.
        "host": "127.0.0.1" if env.get("APP_ENV", "").strip().lower() == "development" else "[::]",
    }


def load_readable(environ: os._Environ | dict | None = None) -> tuple[dict, dict]:
    """``load()`` of every variable it can parse, and {variable: error} for the others: flask
    doctor names each unreadable setting and still checks the rest."""
    env = os.environ if environ is None else environ
    try:
        return load(env), {}
    except (ValueError, ConfigError):
        bad = {}
        for name, value in env.items():
            try:
                load({"APP_ENV": "development", name: value})
            except (ValueError, ConfigError) as exc:
                bad[name] = str(exc)
        return load({k: v for k, v in env.items() if k not in bad}), bad


def is_development(cfg: dict) -> bool:
    return cfg.get("APP_ENV") == "development"


def demo_flows(cfg: dict) -> bool:
    """DEMO_FLOWS, or by default: on in development, off anywhere else."""
    return is_development(cfg) if cfg.get("DEMO_FLOWS") is None else bool(cfg["DEMO_FLOWS"])
