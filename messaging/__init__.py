"""Outbound channels: the Graph API transport, the Cloud API, WASenderApi, the console."""


def init_app(app) -> None:
    from flows.correlation import Correlation
    from messaging.cloud import CloudChannel
    from messaging.console import ConsoleChannel
    from messaging.graph import GraphClient
    from messaging.sender import Sender

    cfg = app.config
    app.extensions["graph"] = GraphClient(
        cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
        cfg["WHATSAPP_PHONE_NUMBER_ID"],
    )
    # No access token (make run): messages go to the console outbox instead of Meta.
    channel = (CloudChannel(app.extensions["graph"]) if cfg["WHATSAPP_ACCESS_TOKEN"]
               else ConsoleChannel(app.extensions["redis"]))
    app.extensions["sender"] = Sender(channel, Correlation(app.extensions["redis"], app.extensions["sessions"]))
