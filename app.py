"""Flowgate: the WhatsApp Flows backend. ``create_app()`` is the table of contents."""
from __future__ import annotations

import logging

from flask import Flask

import config


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(config.load() if test_config is None else {**config.defaults(), **test_config})
    # Webhooks may carry up to 3 MB (protocol doc 5.1); the Flow endpoint sets its own lower limit.
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default config holds None
        app.config["MAX_CONTENT_LENGTH"] = 3 * 1024 * 1024
    _logging(app)

    import domain
    import metrics
    import security
    import storage
    from blueprints import (auth, bodies, dashboard, demo_api, endpoint, errors, health, media,
                            playground, send_api, submissions, wasender_webhook, webhooks)
    from cli import init_app as init_cli
    from messaging import init_app as init_messaging

    storage.init_app(app)
    security.init_app(app)
    metrics.init_app(app)
    domain.init_app(app)
    init_messaging(app)
    auth.init_app(app)
    playground.init_app(app)
    errors.init_app(app)
    bodies.init_app(app)
    init_cli(app)

    app.register_blueprint(endpoint.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(send_api.bp)
    app.register_blueprint(wasender_webhook.bp)
    app.register_blueprint(demo_api.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(playground.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(submissions.bp)
    app.register_blueprint(media.bp)
    return app


def _logging(app: Flask) -> None:
    logger = logging.getLogger("flowgate")
    logger.setLevel(app.config["LOG_LEVEL"])
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
