"""App-wide error answers: JSON for HTTP errors, and a bare 500 that says nothing of the cause."""
import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger("flowgate.errors")


def init_app(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.name, description=exc.description), exc.code

    @app.errorhandler(InternalServerError)
    def internal_error(exc):
        # The traceback goes to the log (Flask logged it already); the body carries nothing.
        return jsonify(error="Internal Server Error"), 500
