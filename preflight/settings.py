"""Settings: present where production needs them, and parseable, before anything is started.

Every rule here mirrors one the app applies (or will apply) at start or at its first use of the
setting; the line says which variable and how to fix it.
"""
from __future__ import annotations

from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import config
import security
from flows import keys
from flows.recovery import Ladder, QuietHours, parse_duration
from messaging.ratelimit import parse_rate
from messaging.router import MODES

# FOLLOWUP_CHANNEL=none: no follow-ups at all (no Cloud or WASender credentials needed).
CHANNELS = tuple(dict.fromkeys((*MODES, "none")))
NEEDS_CLOUD = ("cloud", "hybrid")
NEEDS_WASENDER = ("hybrid", "wasender")
URL_SETTINGS = ("WHATSAPP_API_BASE", "WASENDER_API_BASE", "PUBLIC_BASE_URL", "COMPLETION_FORWARD_URL",
                "HANDOFF_FORWARD_URL", "LOOKUP_BASE_URL", "RECEIPT_IMAGE_URL")
GENERATE = "openssl rand -hex 32"


def check(report, environ) -> dict | None:
    """Adds the settings lines; returns the configuration, or None when it cannot be read."""
    try:
        cfg, unreadable = config.load_readable(environ)
    except ValueError as exc:  # two settings that only fail together: say what load() said
        report.fail("settings", f"cannot be read: {exc}", "see README, Configuration")
        return None
    report.production = not config.is_development(cfg)
    for name, error in sorted(unreadable.items()):
        report.fail(name, f"cannot be read ({error})", f"set {name} to a number, or unset it for the default")
    if cfg["APP_ENV"] not in ("production", "development"):
        report.fail("APP_ENV", f"is {cfg['APP_ENV']!r}", "use production (or development on your machine)")
    elif not report.production:
        report.warn("APP_ENV", "development: missing secrets are generated or skipped here",
                    "run flask doctor with your production settings to check a deploy")
    _private_key(report, cfg)
    _secrets(report, cfg)
    _redis_url(report, cfg)
    _channel(report, cfg)
    _parsed(report, cfg)
    _urls(report, cfg)
    return cfg


def _private_key(report, cfg) -> None:
    if not (cfg["FLOW_PRIVATE_KEY"] or cfg["FLOW_PRIVATE_KEY_PATH"]) and not report.production:
        report.warn("FLOW_PRIVATE_KEY", "not set: development generates a key pair under instance/")
        return
    path = cfg["FLOW_PRIVATE_KEY_PATH"]
    if path and not cfg["FLOW_PRIVATE_KEY"]:
        try:
            open(path, "rb").close()
        except OSError as exc:
            report.fail("FLOW_PRIVATE_KEY_PATH", f"cannot be read: {exc.strerror or exc}",
                        "point it at the PEM file, or set FLOW_PRIVATE_KEY instead")
            return
    try:
        ring = security.build_keyring(dict(cfg))
    except security.ConfigurationError as exc:
        report.required("FLOW_PRIVATE_KEY", str(exc),
                        "flask keys generate, then set FLOW_PRIVATE_KEY to the one-line key it prints "
                        "(and FLOW_PRIVATE_KEY_PASSPHRASE if it has one)")
        return
    except OSError as exc:
        report.fail("FLOW_PRIVATE_KEY_PATH", f"cannot be read: {exc.strerror or exc}",
                    "point it at the PEM file, or set FLOW_PRIVATE_KEY instead")
        return
    previous = (f"; previous key sha256:{keys.fingerprint(ring.previous)[:16]}… (rotation in progress)"
                if ring.previous is not None else "")
    report.ok("FLOW_PRIVATE_KEY",
              f"RSA-2048 key loads, sha256:{keys.fingerprint(ring.current)[:16]}…{previous}")


def _secrets(report, cfg) -> None:
    if not cfg["WHATSAPP_APP_SECRET"]:
        report.required("WHATSAPP_APP_SECRET", "not set: Flow requests and webhooks cannot be verified",
                        "the App Secret of the Meta app linked to your Flows (App "
                        "Dashboard → App settings → Basic)")
    if not cfg["SECRET_KEY"]:
        report.required("SECRET_KEY",
                        "not set: the dashboard cookie and media links have no secret to sign with",
                        f"set it to a long random value ({GENERATE}); app.json generates one")
    elif len(cfg["SECRET_KEY"]) < 32:
        report.warn("SECRET_KEY", f"only {len(cfg['SECRET_KEY'])} characters",
                    f"use at least 32 ({GENERATE})")
    missing = {
        "WHATSAPP_VERIFY_TOKEN": "Meta cannot verify /webhooks/whatsapp (the handshake answers 403)",
        "API_TOKEN": "the send and submissions APIs are closed",
        "DASHBOARD_PASSWORD": "/dashboard, /metrics and /playground are closed (404)",
    }
    for name, consequence in missing.items():
        if not cfg[name] and report.production:
            report.warn(name, f"not set: {consequence}", f"set it to a random value ({GENERATE})")
    if all(cfg[n] for n in ("WHATSAPP_APP_SECRET", "SECRET_KEY", *missing)):
        report.ok("secrets", "WHATSAPP_APP_SECRET, SECRET_KEY, WHATSAPP_VERIFY_TOKEN, API_TOKEN, "
                             "DASHBOARD_PASSWORD are set")


def _redis_url(report, cfg) -> None:
    url = cfg["REDIS_URL"]
    if not url:
        if report.production:  # development starts an embedded Redis
            report.fail("REDIS_URL", "not set",
                        "on Heroku: heroku addons:create heroku-redis (it sets REDIS_URL)")
    elif urlparse(url).scheme not in ("redis", "rediss", "unix"):
        report.fail("REDIS_URL",
                    f"scheme {urlparse(url).scheme or '(none)'!r} is not redis://, rediss:// or unix://",
                    "use the URL the Redis add-on gives")


def channel_of(cfg) -> str:
    """The follow-up channel the app will use (messaging.init_app's default)."""
    return cfg["FOLLOWUP_CHANNEL"] or (
        "console" if config.is_development(cfg) and not cfg["WHATSAPP_ACCESS_TOKEN"] else "cloud")


def _channel(report, cfg) -> None:
    mode = channel_of(cfg)
    if mode not in CHANNELS:
        report.fail("FOLLOWUP_CHANNEL", f"is {mode!r}", f"one of {', '.join(CHANNELS)}")
        return
    problems = 0
    if mode in NEEDS_CLOUD:
        for name, what in (("WHATSAPP_ACCESS_TOKEN", "a system-user token with whatsapp_business_messaging"),
                           ("WHATSAPP_PHONE_NUMBER_ID",
                            "the id of the sending number (WhatsApp Manager → API setup)")):
            if not cfg[name]:
                problems += 1
                report.required(name, f"not set, and FOLLOWUP_CHANNEL is {mode}: nothing can be sent",
                                f"{what}; or FOLLOWUP_CHANNEL=none to send no follow-ups")
        if not cfg["WHATSAPP_BUSINESS_ACCOUNT_ID"] and report.production:
            report.warn("WHATSAPP_BUSINESS_ACCOUNT_ID", "not set: the webhook subscription and the templates "
                        "cannot be checked", "set it to the WABA id of the sending number")
    if mode in NEEDS_WASENDER and not cfg["WASENDER_API_KEY"]:
        problems += 1
        report.required("WASENDER_API_KEY", f"not set, and FOLLOWUP_CHANNEL is {mode}",
                        "the API key of your WASender session, or FOLLOWUP_CHANNEL=cloud")
    if mode == "console" and report.production:
        report.warn("FOLLOWUP_CHANNEL", "console: messages are recorded, never sent",
                    "FOLLOWUP_CHANNEL=cloud (or none to send no follow-ups at all)")
    elif not problems:
        report.ok("FOLLOWUP_CHANNEL", f"{mode}" + (" (no follow-ups are sent)" if mode == "none" else ""))


def _parsed(report, cfg) -> None:
    """Durations, rates, policies and mappings: what the app parses when it first needs them."""
    rules = [
        ("RECOVERY_STEPS",
         lambda v: Ladder.from_spec(v), "comma-separated increasing durations, e.g. 15m,6h,23h"),
        ("RECOVERY_GIVE_UP_AFTER", parse_duration, "a duration like 24h, 90m or 3600"),
        ("QUIET_HOURS", QuietHours.parse, "HH:MM-HH:MM, e.g. 21:00-08:00"),
        ("DEFAULT_TIMEZONE", ZoneInfo, "an IANA time zone such as Europe/Madrid"),
        ("WASENDER_RATE", parse_rate, "like 1/min, 1/5s or 256/min"),
        ("RECOVERY_START", lambda v: _one_of(v, ("opened", "sent")), "opened or sent"),
        ("FLOW_TOKEN_POLICY", lambda v: _one_of(v, ("open", "strict")), "open or strict"),
        ("FLOW_TEMPLATES", _templates,
         "flow=template_name:language,... e.g. member_check=resume_member:en_US"),
    ]
    failed = 0
    for name, parse, expected in rules:
        value = cfg[name]
        if value in (None, "", {}):
            continue
        try:
            parse(value)
        except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:
            failed += 1
            report.fail(name, f"{_short(value)!r} cannot be read ({exc})", f"expected {expected}")
    for name in ("FLOW_DEADLINE_SECONDS", "FLOW_SESSION_LIFETIME", "LOOKUP_TIMEOUT_SECONDS"):
        if cfg[name] <= 0:
            failed += 1
            report.fail(name, f"is {cfg[name]}", "a positive number, or unset for the default")
    if not failed:
        report.ok("durations", f"recovery {cfg['RECOVERY_STEPS']} (give up after "
                               f"{cfg['RECOVERY_GIVE_UP_AFTER']}), WASender rate {cfg['WASENDER_RATE']}, "
                               "policies and templates parse")


def _one_of(value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"not one of {', '.join(allowed)}")


def _templates(mapping: dict) -> None:
    for flow, (name, language) in mapping.items():
        if not flow or not name or not language:
            raise ValueError(f"{flow or '?'}: a template name and a language are needed")


def _urls(report, cfg) -> None:
    checked = 0
    for name in _url_settings(cfg):
        value = cfg.get(name)
        if not value:
            continue
        checked += 1
        url = urlparse(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            report.fail(name, f"{_short(value)!r} is not an http(s) URL", "write it as https://host/path")
        elif name == "PUBLIC_BASE_URL" and report.production and url.scheme != "https":
            report.warn(name, "is not https: Meta only calls and fetches https URLs",
                        "use the app's https address, e.g. https://<app>.herokuapp.com")
    if cfg["RECEIPT_PDF"] and not cfg["PUBLIC_BASE_URL"]:
        report.warn("PUBLIC_BASE_URL", "not set, and RECEIPT_PDF is on: every receipt fails",
                    "set it to the app's public https address")
    if checked and not any(c.name in _url_settings(cfg) and c.status != "ok" for c in report.checks):
        report.ok("URLs", f"{checked} URL setting(s) are http(s) URLs")


def _url_settings(cfg) -> tuple:
    """The fixed URL settings, and each lookup's <PREFIX>_API_URL that is set."""
    lookups = sorted(name for name in cfg if config.LOOKUP_SETTING.fullmatch(name) and name.endswith("_URL"))
    return (*URL_SETTINGS, *lookups)


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_flow_names(report, app) -> None:
    """FLOW_TEMPLATES and FLOW_IDS may only name flows the app serves."""
    served = set(app.extensions["flows"].names())
    for name in ("FLOW_TEMPLATES", "FLOW_IDS"):
        unknown = sorted(set(app.config[name]) - served)
        if unknown:
            report.fail(name, f"names flows this app does not serve: {', '.join(unknown)}",
                        f"served: {', '.join(sorted(served)) or 'none'}; fix the flow names")
