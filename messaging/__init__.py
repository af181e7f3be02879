"""Outbound channels: the Graph API transport, the Cloud API, WASenderApi, the console."""


def init_app(app) -> None:
    from messaging.graph import GraphClient

    cfg = app.config
    app.extensions["graph"] = GraphClient(
        cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
        cfg["WHATSAPP_PHONE_NUMBER_ID"],
    )
