"""Request bodies end at their route's limit whatever the framing: over it is 413.

With ``Content-Length`` werkzeug refuses an oversized body before reading it. A chunked body has no
length: the server ends the stream (gunicorn sets ``wsgi.input_terminated``) and werkzeug's cap
then stops reading *quietly* at the limit, so a body cut there was processed as if whole (a
signed first MiB with any tail behind it was answered 200). Here the cap reads one byte further
and refuses the request when that byte exists. It is the request class of the app, so every
route that reads a body (``get_data``, ``get_json``, forms) gets it with its own limit
(``request.max_content_length``, set per route, or ``MAX_CONTENT_LENGTH``) and no route changes.
"""
from __future__ import annotations

import io

from flask import Request as FlaskRequest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream


class _AtMost(io.RawIOBase):
    """The body stream; the first byte past ``limit`` raises 413."""

    def __init__(self, stream, limit: int):
        self._stream = stream
        self._limit = limit
        self._seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._stream.readinto(buffer) or 0
        self._seen += count
        if self._seen > self._limit:
            raise RequestEntityTooLarge()
        return count


class Request(FlaskRequest):
    @cached_property
    def stream(self):
        if self.shallow:
            raise RuntimeError("a shallow request does not read its body")
        limit = self.max_content_length
        if limit is None:
            return get_input_stream(self.environ)
        # One byte past the limit, so "exactly the limit" and "over it" can be told apart.
        return _AtMost(get_input_stream(self.environ, max_content_length=limit + 1), limit)


def init_app(app) -> None:
    app.request_class = Request
