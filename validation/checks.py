"""The built-in checks of flows/validation.py and their messages per locale.

A built-in check is a callable ``value -> value`` (possibly converted: an int, a Decimal string)
that raises ``Invalid(code, **params)``; its ``code`` attribute marks it as built-in. Texts are
looked up by code, so a flow can reword any of them per field or per locale.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

# Anything longer is refused before a normaliser or a regex ever sees it.
MAX_INPUT = 1000

MESSAGES = {
    "en": {
        "required": "This field is required",
        "invalid": "This value isn't valid",
        "too_short": "Use at least {min} characters",
        "too_long": "Use at most {max} characters",
        "pattern": "This doesn't look right",
        "one_of": "Choose one of the options",
        "integer": "Enter a whole number",
        "decimal": "Enter a number",
        "too_small": "The minimum is {min}",
        "too_large": "The maximum is {max}",
        "email": "Enter an email address like name@example.com",
        "phone": "Enter the number with its country code, like +14155550100",
        "date": "Pick a date",
        "date_window": "Pick a date between {first} and {last}",
        "luhn": "This number isn't valid; check the digits",
        "not_found": "We couldn't find this",
        "unavailable": "We can't check this right now",
        "unavailable_snackbar": "We can't check this right now, please try again.",
        "several": "Please fix the {count} highlighted fields.",
    },
    "es": {
        "required": "Este campo es obligatorio",
        "invalid": "Este valor no es válido",
        "too_short": "Usa al menos {min} caracteres",
        "too_long": "Usa como máximo {max} caracteres",
        "pattern": "Esto no parece correcto",
        "email": "Escribe un correo como nombre@ejemplo.com",
        "phone": "Escribe el número con su prefijo, como +34600111222",
        "not_found": "No lo encontramos",
        "unavailable": "No podemos comprobarlo ahora",
        "unavailable_snackbar": "No podemos comprobarlo ahora; inténtalo de nuevo.",
        "several": "Corrige los {count} campos marcados.",
    },
}


class Invalid(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


def as_text(raw) -> str:
    """Form values arrive as JSON: strings, numbers; anything else is not something a user typed."""
    if raw is None:
        return ""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise Invalid("invalid")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # a number input may arrive as 2.0
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > MAX_INPUT:
        raise Invalid("too_long", max=MAX_INPUT)
    return text


def _builtin(code: str):
    def mark(fn):
        fn.code = code
        fn.texts = {}

        def says(text: str, **per_locale):
            """Reword this check's error, e.g. ``required().says("Tell us your ZIP", es="…")``."""
            fn.texts = {"*": text, **per_locale}
            return fn

        fn.says = says
        return fn
    return mark


def required():
    @_builtin("required")
    def check(v):
        if v == "":
            raise Invalid("required")
        return v
    return check


def length(min: int | None = None, max: int | None = None):
    @_builtin("length")
    def check(v):
        if min is not None and len(v) < min:
            raise Invalid("too_short", min=min)
        if max is not None and len(v) > max:
            raise Invalid("too_long", max=max)
        return v
    return check


def pattern(regex: str, code: str = "pattern"):
    compiled = re.compile(regex)

    @_builtin(code)
    def check(v):
        if not compiled.fullmatch(v):
            raise Invalid(code)
        return v
    return check


def one_of(options):
    allowed = set(options)

    @_builtin("one_of")
    def check(v):
        if v not in allowed:
            raise Invalid("one_of")
        return v
    return check


def integer(min: int | None = None, max: int | None = None):
    @_builtin("integer")
    def check(v):
        if not re.fullmatch(r"[+-]?\d{1,18}", str(v)):
            raise Invalid("integer")
        n = int(v)
        _bounds(n, min, max)
        return n
    return check


def decimal(min=None, max=None, places: int = 2):
    quantum = Decimal(1).scaleb(-places)

    @_builtin("decimal")
    def check(v):
        if not re.fullmatch(r"[+-]?\d{1,15}([.,]\d+)?", str(v)):
            raise Invalid("decimal")
        try:
            d = Decimal(str(v).replace(",", ".")).quantize(quantum)
        except InvalidOperation:
            raise Invalid("decimal") from None
        _bounds(d, min if min is None else Decimal(str(min)), max if max is None else Decimal(str(max)))
        return str(d)
    return check


def _bounds(n, lo, hi):
    if lo is not None and n < lo:
        raise Invalid("too_small", min=lo)
    if hi is not None and n > hi:
        raise Invalid("too_large", max=hi)


_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")


def email():
    @_builtin("email")
    def check(v):
        if len(v) > 254 or not _EMAIL.fullmatch(v):
            raise Invalid("email")
        return v
    return check


def phone():
    """E.164: '+', a non-zero country code digit, 7 to 15 digits in all."""
    @_builtin("phone")
    def check(v):
        if not re.fullmatch(r"\+[1-9]\d{6,14}", v):
            raise Invalid("phone")
        return v
    return check


def date_within(days_before: int = 0, days_after: int = 30, today=date.today):
    """A 'YYYY-MM-DD' date (what DatePicker sends since Flow JSON 5.0) inside a window around today."""
    @_builtin("date_within")
    def check(v):
        try:
            d = date.fromisoformat(v)
        except ValueError:
            raise Invalid("date") from None
        if len(v) != 10:
            raise Invalid("date")
        first, last = today() - timedelta(days=days_before), today() + timedelta(days=days_after)
        if not first <= d <= last:
            raise Invalid("date_window", first=first.isoformat(), last=last.isoformat())
        return v
    return check


def luhn():
    """Card-like numbers: digits only (normalise spaces away first), checksum valid."""
    @_builtin("luhn")
    def check(v):
        if not re.fullmatch(r"\d{8,19}", v):
            raise Invalid("luhn")
        total = 0
        for i, ch in enumerate(reversed(v)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10:
            raise Invalid("luhn")
        return v
    return check
