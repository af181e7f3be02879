"""App-wide error answers: JSON for HTTP errors, 503 whenever Redis or the records database fails,
and a bare 500 that says nothing of the cause.

A blueprint may answer a Redis failure its own way (the dashboard's pages say it in text); every
other route gets the 503 below, so no view needs its own ``except RedisError``.
"""
import logging

from flask import jsonify, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from flows.redact import redis_unavailable
from records import DatabaseError
from redis_budget import RedisSkipped

log = logging.getLogger("flowgate.errors")
REDIS_RETRY_AFTER = 10  # seconds: a Redis restart or a failover on Heroku takes about that long


class BadParameter(BadRequest):
    """A query or JSON parameter that is missing, of the wrong type or out of bounds: a 400 that
    names it (``{"error", "description", "parameter"}``)."""

    def __init__(self, parameter: str, description: str):
        super().__init__(description)
        self.parameter = parameter


def init_app(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        body = {"error": exc.name, "description": exc.description}
        if isinstance(exc, BadParameter):
            body["parameter"] = exc.parameter
        response = jsonify(body)
        # The exception's own headers carry meaning: Retry-After on a 429, Allow on a 405.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, exc.code

    @app.errorhandler(RedisError)
    def storage_unavailable(exc: RedisError):
        route = request.url_rule.rule if request.url_rule else "-"  # the pattern: no ids in the log
        # down, timing out, LOADING, or skipped after a timeout earlier (redis_budget.py)
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, RedisSkipped)):
            redis_unavailable(log, f"{request.method} {route}", exc, "answering 503")
        else:  # Redis refused a command (OOM, READONLY after a failover, or a bug): keep the trace
            log.error("Redis refused a command on %s %s: answering 503", request.method, route,
                      exc_info=exc)
        response = jsonify(error="Service Unavailable", description="storage unavailable; try again shortly")
        response.headers["Retry-After"] = str(REDIS_RETRY_AFTER)
        return response, 503

    @app.errorhandler(DatabaseError)
    def database_unavailable(exc: DatabaseError):
        """The records store (records/) down, restarting or refusing: 503, never a traceback page.
        A connection problem is a warning; anything else keeps its trace in the log."""
        from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        route = request.url_rule.rule if request.url_rule else "-"
        if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)):
            log.warning("database unavailable (%s) on %s %s: answering 503", type(exc).__name__,
                        request.method, route)
        else:
            log.error("database refused a statement on %s %s: answering 503", request.method, route,
                      exc_info=exc)
        response = jsonify(error="Service Unavailable",
                           description="records store unavailable; try again shortly")
        response.headers["Retry-After"] = str(REDIS_RETRY_AFTER)
        return response, 503

    @app.errorhandler(InternalServerError)
    def internal_error(exc):
        # The traceback goes to the log (Flask logged it already); the body carries nothing.
        return jsonify(error="Internal Server Error"), 500
