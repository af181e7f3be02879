"""Declarative validation of a screen's fields, lookups included.

    FORM = Form(
        Field("member_id", required(), length(max=20), pattern(r"^[A-Z0-9]+$"),
              normalise=[trim, upper], lookup="members",
              messages={"not_found": "We couldn't find that member ID"}),
    )
    result = FORM.check(ctx)
    if not result.ok:
        return result.screen("MEMBER_LOOKUP")

Every field is normalised, then checked; all failing fields are reported at once, each as
``<name>_error`` in the screen data (bound to the input's ``error-message``), plus one snackbar
``error_message``. Lookups run only for fields whose local checks passed, within the deadline,
and apply their lookup's policy when no answer can be had. A custom check is a plain function
``value -> error text or None``; built-in checks raise ``Invalid(code, **params)`` and their texts
come from ``MESSAGES`` per locale, overridable per field and per check.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field as dc_field

from redis.exceptions import RedisError

from validation.checks import MESSAGES, Invalid, as_text
from flows.protocol import Screen
from flows.sessions import short
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.validation")


# --- normalisers: plain str -> str functions -------------------------------------------------
def trim(v: str) -> str:
    return v.strip()


def upper(v: str) -> str:
    return v.upper()


def lower(v: str) -> str:
    return v.lower()


def no_spaces(v: str) -> str:
    return "".join(v.split())


def phone_chars(v: str) -> str:
    """'+1 (415) 555-0100' → '+14155550100': what people type around the digits goes."""
    return "".join(c for c in v if c.isdigit() or c == "+")


class Field:
    def __init__(self, name: str, *checks, normalise=(trim,), lookup: str | None = None,
                 policy: str | None = None, verify=None, messages: dict | None = None,
                 translations: dict | None = None, echo: bool = False):
        self.name = name
        self.checks = checks
        self.normalise = tuple(normalise)
        self.lookup = lookup  # a lookup the flow declares: ctx.lookup(name, value)
        # "closed" here wins over the lookup's configured policy: for a field whose record the
        # flow needs (a price, a stock level), accepting it unverified is not an option.
        self.policy = policy
        self.verify = verify  # record -> error text/code or None, for a found record
        self.messages = messages or {}
        self.translations = translations or {}
        self.echo = echo  # also send the normalised value back as <name>_value (init-value)

    @property
    def error_key(self) -> str:
        return f"{self.name}_error"

    def text(self, code: str, locale: str, **params) -> str:
        for table in (self.translations.get(locale, {}), self.messages,
                      MESSAGES.get(locale, {}), MESSAGES["en"]):
            if code in table:
                return table[code].format(**params)
        return code  # a custom check's own text

    def clean(self, raw, locale: str):
        """(normalised value, error text or None, failing check's code or None), checks in order."""
        try:
            value = as_text(raw)
        except Invalid as bad:
            return "", self.text(bad.code, locale, **bad.params), bad.code
        for fn in self.normalise:
            value = fn(value)
        if value == "" and not any(getattr(c, "code", None) == "required" for c in self.checks):
            return value, None, None  # optional and empty: nothing else to check
        for check in self.checks:
            if not hasattr(check, "code"):  # a custom check: value -> error text or None
                problem = check(value)
                if problem:
                    return value, self.text(problem, locale), getattr(check, "__name__", "custom")
                continue
            try:
                value = check(value)  # built-ins may convert (an int, a decimal string)
            except Invalid as bad:
                own = check.texts.get(locale) or check.texts.get("*")
                text = own.format(**bad.params) if own else self.text(bad.code, locale, **bad.params)
                return value, text, bad.code
        return value, None, None


@dataclass
class Result:
    form: "Form"
    values: dict
    errors: dict
    locale: str = "en"
    records: dict = dc_field(default_factory=dict)  # field → the lookup's record
    unverified: list = dc_field(default_factory=list)  # fields accepted without an answer
    snackbar: str | None = None
    codes: dict = dc_field(default_factory=dict)  # field → the failing check's code (metrics)

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, name: str, text: str) -> "Result":
        """A cross-field or business rule said no (after check()): add it, redo the snackbar."""
        self.errors[name] = text
        self.snackbar = self.form._snackbar(self)
        return self

    def error_data(self) -> dict:
        data = {}
        for f in self.form.fields:
            data[f.error_key] = self.errors.get(f.name, "")
            if f.echo:
                value = self.values.get(f.name, "")
                data[f"{f.name}_value"] = value if isinstance(value, str) else str(value)
        return data

    def screen(self, name: str, data: dict | None = None) -> Screen:
        """The screen again with every field's error (or "") and the snackbar."""
        return Screen(name, {**self.error_data(), **(data or {})}, error_message=self.snackbar)


class Form:
    def __init__(self, *fields: Field, messages: dict | None = None):
        self.fields = fields
        self.messages = messages or {}

    def neutral(self, values: dict | None = None) -> dict:
        """First display: every error key empty, echoed values from ``values`` or empty."""
        values = values or {}
        data = {f.error_key: "" for f in self.fields}
        data.update({f"{f.name}_value": str(values.get(f.name, "")) for f in self.fields if f.echo})
        return data

    def validate(self, data: dict, locale: str = "en") -> Result:
        """Local checks only (no lookups): the normalised values and every field's error."""
        data = data if isinstance(data, dict) else {}
        values, errors, codes = {}, {}, {}
        for f in self.fields:
            value, error, code = f.clean(data.get(f.name), locale)
            values[f.name] = value
            if error:
                errors[f.name], codes[f.name] = error, code
        result = Result(self, values, errors, locale, codes=codes)
        result.snackbar = self._snackbar(result)
        return result

    def check(self, ctx, locale: str | None = None, data: dict | None = None) -> Result:
        """Local checks, then the lookups of the fields that passed them. ``data`` replaces the
        request's data, e.g. values carried on the session rather than echoed by the client."""
        locale = locale if locale in MESSAGES else "en"
        result = self.validate(ctx.data if data is None else data, locale)
        unavailable = False
        for f in self.fields:
            value = result.values.get(f.name)
            if not f.lookup or f.name in result.errors or value in ("", None):
                continue
            policy = ctx.lookup_policy(f.lookup)
            answer = ctx.lookup(f.lookup, str(value))
            if not answer.unavailable and policy == "open":
                self._forget_unverified(ctx, f)  # an earlier value may have been marked
            if answer.found:
                result.records[f.name] = answer.record
                problem = f.verify(answer.record) if f.verify else None
                if problem:
                    result.errors[f.name] = f.text(problem, locale)
                    result.codes[f.name] = str(problem)[:40]
            elif answer.not_found:
                result.errors[f.name] = f.text("not_found", locale)
                result.codes[f.name] = "not_found"
            elif (f.policy or policy) == "open":
                result.unverified.append(f.name)
                self._mark_unverified(ctx, f, value)
            else:
                result.errors[f.name] = f.text("unavailable", locale)
                result.codes[f.name] = "unavailable"
                unavailable = True
        result.snackbar = self._snackbar(result, unavailable)
        _count_failures(ctx, result)
        if unavailable:
            ctx.lookup_unavailable()
        return result

    def _snackbar(self, result: Result, unavailable: bool = False) -> str | None:
        if not result.errors:
            return None
        table = {**MESSAGES["en"], **MESSAGES.get(result.locale, {}), **self.messages}
        if unavailable:
            return table["unavailable_snackbar"]
        if len(result.errors) == 1:
            (name, text), = result.errors.items()
            # A field may say more in the snackbar than under itself: messages["<code>_snackbar"].
            field = next((f for f in self.fields if f.name == name), None)
            hint = field.messages.get(f"{result.codes.get(name)}_snackbar") if field else None
            return hint or text
        return table["several"].format(count=len(result.errors))

    @staticmethod
    def _forget_unverified(ctx, f: Field) -> None:
        if ctx.sessions and ctx.token:
            try:
                ctx.sessions.clear_unverified(ctx.token, f.name)
            except RedisError as exc:
                redis_unavailable(log, f"clearing {f.name}'s unverified mark", exc, token=short(ctx.token))

    @staticmethod
    def _mark_unverified(ctx, f: Field, value) -> None:
        if not (ctx.sessions and ctx.token):
            log.warning("flow=%s field=%s accepted unverified without a session to re-check it",
                        ctx.flow.name, f.name)
            return
        try:
            ctx.sessions.mark_unverified(ctx.token, f.name, f.lookup, str(value), ctx.flow.name)
        except RedisError as exc:
            redis_unavailable(log, f"marking {f.name} unverified", exc, token=short(ctx.token))


def _count_failures(ctx, result: Result) -> None:
    """Which field failed which check, for the dashboard's top validation errors. A metric must
    never cost the user their screen, so a Redis failure here is only logged."""
    metrics = ctx.deps.get("metrics")
    if metrics is None or not result.errors:
        return
    try:
        with metrics.batch() as rec:
            for name in result.errors:
                rec.validation_failure(ctx.flow.name, name, result.codes.get(name) or "invalid")
    except RedisError as exc:
        redis_unavailable(log, "validation metrics", exc, "not recorded", flow=ctx.flow.name)
