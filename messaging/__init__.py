"""Outbound channels: the Graph API transport, the Cloud API, WASenderApi, the console."""


def init_app(app) -> None:
    from messaging.graph import GraphClient
    from messaging.ratelimit import parse_rate
    from messaging.wasender import WASenderClient

    cfg = app.config
    app.extensions["graph"] = GraphClient(
        cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
        cfg["WHATSAPP_PHONE_NUMBER_ID"],
    )
    app.extensions["wasender"] = WASenderClient(
        cfg["WASENDER_API_BASE"], cfg["WASENDER_API_KEY"], app.extensions["redis"],
        parse_rate(cfg["WASENDER_RATE"]),
    )

    from config import is_development
    from messaging.channels import CloudChannel, ConsoleChannel, WASenderChannel
    from messaging.router import Router

    mode = cfg["FOLLOWUP_CHANNEL"] or (
        "console" if is_development(cfg) and not cfg["WHATSAPP_ACCESS_TOKEN"] else "cloud")
    import requests

    app.extensions["forward_http"] = requests.Session()  # pooled, for signed POSTs to the business
    app.extensions["router"] = Router(
        mode,
        CloudChannel(app.extensions["graph"], cfg["FLOW_TEMPLATES"], cfg["FLOW_IDS"]),
        WASenderChannel(app.extensions["wasender"]),
        ConsoleChannel(app.extensions["redis"]),
        app.extensions["contacts"],
    )
