"""Strict parsing of what clients send: query parameters and JSON bodies.

Python's own parsers are generous in ways that turn into 500s or wrong answers further in:
``"²".isdigit()`` is true but ``int("²")`` raises; ``int()`` takes Arabic-Indic digits, spaces
and underscores; ``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deep nesting and
lets lone surrogates through, which redis-py then cannot encode. Every route reads its input
through here, and a bad value is a ``BadParameter`` (400 naming the parameter).
"""
from __future__ import annotations

from flask import request
from flask.json.provider import DefaultJSONProvider

from blueprints.errors import BadParameter

MAX_JSON_DEPTH = 32  # far deeper than any API body needs, far below the interpreter's limit


class StrictJSONProvider(DefaultJSONProvider):
    """``request.get_json()`` everywhere: deep nesting becomes a ValueError, so ``silent=True``
    gives None and the default gives 400, as for any other body that is not JSON."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def init_app(app) -> None:
    app.json = StrictJSONProvider(app)


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole number in [low, high] written in ASCII digits, or the default when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    significant = raw.lstrip("0") or "0"  # bounded before int(): "9" * 5000 costs no conversion
    if not (raw.isascii() and raw.isdigit()) or len(significant) > len(str(high)) \
            or not low <= int(significant) <= high:
        raise BadParameter(name, f"{name} must be a whole number from {low} to {high}")
    return int(significant)


def json_object() -> dict:
    """The body as a JSON object of valid Unicode, at most MAX_JSON_DEPTH deep; else 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadParameter("body", "the body must be a JSON object")
    _check_nesting(body)
    return body


def _check_nesting(value) -> None:
    stack = [(value, 1)]
    while stack:  # iterative: the check itself must not recurse on hostile input
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadParameter("body", f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a "\ud800" escape
        raise BadParameter("body", "the body holds a string that is not valid Unicode") from None


def string_field(body: dict, name: str, max_length: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadParameter(name, f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise BadParameter(name, f"{name} must be at most {max_length} characters")
    return value


def object_field(body: dict, name: str) -> dict:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise BadParameter(name, f"{name} must be a JSON object")
    return value


def text_arg(name: str, max_length: int) -> str | None:
    """A short printable string, or None when absent or empty: no control characters (PostgreSQL
    refuses a NUL in text; a 500 must never be the answer to one)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or not raw.isprintable():
        raise BadParameter(name, f"{name} must be printable text of at most {max_length} characters")
    return raw


def time_arg(name: str) -> float | None:
    """A point in time as UNIX seconds: ISO 8601 (``2026-03-01``, ``2026-03-01T09:30:00Z``; UTC
    when no offset is given) or a number of seconds. None when absent; else 400."""
    from datetime import datetime, timezone

    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    message = f"{name} must be an ISO 8601 date or time (2026-03-01, 2026-03-01T09:30:00Z) or UNIX seconds"
    if len(raw) > 40 or not raw.isascii():
        raise BadParameter(name, message)
    if raw.replace(".", "", 1).isdigit():
        return float(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    except (ValueError, OverflowError):  # not a date; or one whose offset leaves year 1
        raise BadParameter(name, message) from None
