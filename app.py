"""Flowgate: the WhatsApp Flows backend. ``create_app()`` is the table of contents."""
from __future__ import annotations

import logging

import click
from flask import Flask

import config
from config import ConfigError


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    # The flask command builds the app only to find its commands: the subsystems start when a
    # command needs them (cli/__init__.py), so the commands that need nothing (keys generate,
    # flows lint, ...) run with no configuration, no Redis and no side effects.
    for_cli = test_config is None and click.get_current_context(silent=True) is not None
    try:
        app.config.update(config.load() if test_config is None else {**config.defaults(), **test_config})
    except ConfigError as exc:
        if not for_cli:
            raise
        app.config.update(config.defaults())
        app.extensions["config_error"] = exc  # reported by the first command that runs
    # Webhooks may carry up to 3 MB (protocol doc 5.1); the Flow endpoint sets its own lower limit.
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default config holds None
        app.config["MAX_CONTENT_LENGTH"] = 3 * 1024 * 1024
    _logging(app)

    from blueprints import (bodies, dashboard, endpoint, errors, headers, health, home, media, params,
                            playground, send_api, submissions, wasender_webhook, webhooks)
    from cli import init_app as init_cli

    errors.init_app(app)
    bodies.init_app(app)
    params.init_app(app)
    headers.init_app(app)
    init_cli(app)

    app.register_blueprint(home.bp)
    app.register_blueprint(endpoint.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(send_api.bp)
    app.register_blueprint(wasender_webhook.bp)
    if config.demo_flows(app.config):  # the demo flows' backend, served with them
        from examples import demo_api
        app.register_blueprint(demo_api.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(playground.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(submissions.bp)
    app.register_blueprint(media.bp)
    if not for_cli:
        start(app)
    else:  # `flask run` serves this app: start it with the first request
        app.before_request(lambda: start(app) and None)
    return app


def start(app: Flask) -> Flask:
    """The subsystems, in dependency order; each refuses a configuration it cannot run with
    (``config.ConfigError``) before anything is logged. Runs once per app."""
    if "config_error" in app.extensions:
        raise app.extensions["config_error"]
    if "started" in app.extensions:
        return app

    import domain
    import metrics
    import security
    import storage
    from blueprints import auth, playground
    from messaging import init_app as init_messaging

    storage.init_app(app)
    security.init_app(app)
    metrics.init_app(app)
    domain.init_records(app)
    domain.init_app(app)
    playground.init_app(app)
    init_messaging(app)
    # The router asks a user known only by a BSUID for their number at most once, through the one
    # exactly-once mechanism, which lives with the jobs (workers/effects.py).
    from workers.effects import Effects
    app.extensions["router"].effects = Effects(app.extensions["redis"], app.config["EFFECT_LEASE_SECONDS"])
    auth.init_app(app)
    domain.prepare_records(app)
    app.extensions["started"] = True
    return app


def _logging(app: Flask) -> None:
    logger = logging.getLogger("flowgate")
    logger.setLevel(app.config["LOG_LEVEL"])
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
