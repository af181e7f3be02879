"""Outbound channels: the Graph API transport, the Cloud API, WASenderApi, the console."""
import logging

from config import ConfigError, is_development

log = logging.getLogger("flowgate.messaging")


def channel_mode(cfg) -> str:
    """FOLLOWUP_CHANNEL, or what a deployment without it means: the Cloud API when it has a token,
    else the console in development. Production must say so itself: without Cloud API
    credentials it refuses to start unless FOLLOWUP_CHANNEL is none (endpoint only) or console."""
    from messaging.router import MODES

    mode = cfg["FOLLOWUP_CHANNEL"] or (
        "console" if is_development(cfg) and not cfg["WHATSAPP_ACCESS_TOKEN"] else "cloud")
    if mode not in MODES:
        raise ConfigError(f"FOLLOWUP_CHANNEL={mode!r} is not a channel (use one of {', '.join(MODES)})")
    if is_development(cfg):
        return mode
    if mode in ("cloud", "hybrid"):
        missing = [n for n in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID") if not cfg[n]]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, so "
                              f"the Cloud API cannot send (set {'them' if len(missing) > 1 else 'it'}, or "
                              "FOLLOWUP_CHANNEL=none for an endpoint-only deployment, console for staging)")
    if mode in ("wasender", "hybrid") and not cfg["WASENDER_API_KEY"]:
        raise ConfigError(f"WASENDER_API_KEY is not set, so FOLLOWUP_CHANNEL={mode} cannot send through "
                          "WASenderApi (set it, or choose FOLLOWUP_CHANNEL=cloud)")
    return mode


def template_spec(value) -> tuple[str, str] | None:
    """``name:lang`` (language ``en_US`` when left out), as FLOW_TEMPLATES spells a template."""
    if not value:
        return None
    if isinstance(value, (tuple, list)):
        return (str(value[0]), str(value[1]))
    name, _, language = str(value).partition(":")
    return (name.strip(), language.strip() or "en_US")


def init_app(app) -> None:
    import requests

    from messaging.channels import CloudChannel, WASenderChannel
    from messaging.cloud import CloudApi
    from messaging.console import ConsoleChannel
    from messaging.graph import GraphClient
    from messaging.media import MediaStore
    from messaging.ratelimit import parse_rate
    from messaging.router import Router
    from messaging.wasender import WASenderClient

    cfg = app.config
    mode = channel_mode(cfg)
    try:
        rate = parse_rate(cfg["WASENDER_RATE"])
    except ValueError:
        raise ConfigError(f"WASENDER_RATE={cfg['WASENDER_RATE']!r} is not a rate (write it like 1/min, "
                          "1/5s or 256/min)") from None
    app.extensions["graph"] = GraphClient(
        cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
        cfg["WHATSAPP_PHONE_NUMBER_ID"],
    )
    app.extensions["wasender"] = WASenderClient(
        cfg["WASENDER_API_BASE"], cfg["WASENDER_API_KEY"], app.extensions["redis"], rate,
        daily_cap=cfg["WASENDER_DAILY_CAP"],
    )
    app.extensions["forward_http"] = requests.Session()  # pooled, for signed POSTs to the business
    # Every message to a user goes through the router: the one place that picks its channel.
    shapes = {"templates": cfg["FLOW_TEMPLATES"], "flow_ids": cfg["FLOW_IDS"],
                "remembered": app.extensions["flow_ids"]}
    app.extensions["router"] = Router(
        mode,
        CloudChannel(CloudApi(app.extensions["graph"]), **shapes),
        WASenderChannel(app.extensions["wasender"]),
        CloudChannel(ConsoleChannel(app.extensions["redis"]), **shapes, always_in_window=True),
        app.extensions["contacts"],
        contact_info=template_spec(cfg["CONTACT_INFO_TEMPLATE"]),
    )
    # Signs the links of files we send (receipts), keyed from SECRET_KEY (security.secret_key).
    app.extensions["media"] = MediaStore(app.extensions["redis"], cfg["SECRET_KEY"], cfg["PUBLIC_BASE_URL"],
                                         cfg["MEDIA_URL_TTL"])
    log.info("followup channel: %s", DESCRIPTIONS[mode])


DESCRIPTIONS = {
    "cloud": "cloud (the Cloud API sends every message)",
    "hybrid": "hybrid (the Cloud API sends, WASenderApi where it cannot reach the user)",
    "wasender": "wasender (WASenderApi sends every message)",
    "console": "console (messages are recorded in Redis, never sent: flask messages console)",
    "none": "none (endpoint only: nothing is sent; completions are still stored)",
}
