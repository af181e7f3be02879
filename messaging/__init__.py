"""Outbound channels: the Graph API transport, the Cloud API, WASenderApi, the console."""


def template_spec(value) -> tuple[str, str] | None:
    """``name:lang`` (language ``en_US`` when left out), as FLOW_TEMPLATES spells a template."""
    if not value:
        return None
    if isinstance(value, (tuple, list)):
        return (str(value[0]), str(value[1]))
    name, _, language = str(value).partition(":")
    return (name.strip(), language.strip() or "en_US")


def init_app(app) -> None:
    from flows.correlation import Correlation
    from messaging.cloud import CloudChannel
    from messaging.console import ConsoleChannel
    from messaging.graph import GraphClient
    from messaging.ratelimit import parse_rate
    from messaging.wasender import WASenderClient
    from messaging.sender import Sender

    cfg = app.config
    app.extensions["graph"] = GraphClient(
        cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
        cfg["WHATSAPP_PHONE_NUMBER_ID"],
    )
    app.extensions["wasender"] = WASenderClient(
        cfg["WASENDER_API_BASE"], cfg["WASENDER_API_KEY"], app.extensions["redis"],
        parse_rate(cfg["WASENDER_RATE"]), daily_cap=cfg["WASENDER_DAILY_CAP"],
    )

    from config import is_development
    from messaging import channels
    from messaging.router import Router

    mode = cfg["FOLLOWUP_CHANNEL"] or (
        "console" if is_development(cfg) and not cfg["WHATSAPP_ACCESS_TOKEN"] else "cloud")
    import requests

    app.extensions["forward_http"] = requests.Session()  # pooled, for signed POSTs to the business
    console = ConsoleChannel(app.extensions["redis"])
    app.extensions["router"] = Router(
        mode,
        channels.CloudChannel(CloudChannel(app.extensions["graph"]), cfg["FLOW_TEMPLATES"], cfg["FLOW_IDS"]),
        channels.WASenderChannel(app.extensions["wasender"]),
        channels.CloudChannel(console, cfg["FLOW_TEMPLATES"], cfg["FLOW_IDS"], always_in_window=True),
        app.extensions["contacts"],
        contact_info=template_spec(cfg["CONTACT_INFO_TEMPLATE"]),
    )
    # No access token (make run): messages go to the console outbox instead of Meta.
    channel = (CloudChannel(app.extensions["graph"]) if cfg["WHATSAPP_ACCESS_TOKEN"]
               else console)
    from messaging.media import MediaStore

    # Signs the links of files we send (receipts). The same in every process: derived, like the
    # dashboard's SECRET_KEY, from secrets the app already holds when none is set.
    ring = app.extensions["keyring"]
    media_secret = cfg.get("SECRET_KEY") or "\0".join(
        [cfg.get("WHATSAPP_APP_SECRET") or "", str(ring.current.private_numbers().d)])
    app.extensions["media"] = MediaStore(app.extensions["redis"], media_secret, cfg["PUBLIC_BASE_URL"],
                                         cfg["MEDIA_URL_TTL"])
    app.extensions["sender"] = Sender(channel, Correlation(app.extensions["redis"], app.extensions["sessions"]))
