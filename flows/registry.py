"""Flows as code: a Flow is its Flow JSON file plus handlers registered per action and screen.

    flow = Flow("member_check", Path(__file__).with_suffix(".json"))

    @flow.on_exchange("MEMBER_LOOKUP")
    def lookup(ctx): ...

A handler takes a ``Context`` and returns a ``Screen``, a ``Finish`` or a ``TokenRejected``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from redis.exceptions import RedisError

from flows.protocol import FlowRequest
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.endpoint")


@dataclass
class Context:
    """What a handler sees: the request, the session's carried values, and named dependencies."""

    request: FlowRequest
    flow: "Flow"
    deps: dict = field(default_factory=dict)  # e.g. "members": the member store
    deadline: object = None  # flows.budget.Deadline, set by the engine
    sessions: object = None  # flows.sessions.SessionStore, None when the request has no token
    _carried: dict | None = None
    to_carry: dict = field(default_factory=dict)  # written by the engine with the reply
    lookup_failures: int = 0  # closed-policy lookups this session could not answer, so far
    # Called before anything with an effect beyond this request (a write, a call to a business
    # API): the engine checks the token there, so a refused token never causes one.
    before_effect: Callable[[], None] | None = None

    @property
    def data(self) -> dict:
        return self.request.data

    @property
    def token(self) -> str | None:
        return self.request.flow_token

    @property
    def carried(self) -> dict:
        """Values kept across screens (what the user entered, totals); read once, lazily, with
        what this request carries on top. Without Redis it is what this request carries: a
        handler reads it like any dict and never needs to catch anything."""
        if self._carried is None:
            stored = {}
            if self.sessions and self.token:
                try:
                    stored = self.sessions.carried(self.token)
                except RedisError as exc:
                    redis_unavailable(log, "carried values", exc, "serving without them", flow=self.flow.name)
            self._carried = {**stored, **self.to_carry}
        return self._carried

    def lookup_unavailable(self) -> int:
        """Count a lookup that failed closed for this session (the engine hands a session that
        keeps failing to the fallback); returns the session's count, unchanged when Redis cannot
        keep it."""
        if self.sessions and self.token:
            try:
                self.lookup_failures = self.sessions.count_lookup_failure(self.token)
            except RedisError as exc:
                redis_unavailable(log, "lookup failure count", exc, "not counted", flow=self.flow.name)
        return self.lookup_failures

    def lookup(self, name: str, value: str, *, fresh: bool = False):
        """Ask the business API the flow declared as ``name`` about ``value``, within this
        request's deadline, through its cache and breaker (``fresh`` skips the cache): a
        ``validation.lookups.LookupResult`` with ``found``, ``not_found``, ``unavailable`` and
        ``record``."""
        if name not in self.flow.lookups:
            raise KeyError(f"flow {self.flow.name} does not declare lookup {name!r} (Flow(lookups=[...]))")
        return self.deps["lookups"][name].fetch(str(value), deadline=self.deadline, flow=self.flow.name,
                                                fresh=fresh, before_call=self.before_effect)

    def lookup_policy(self, name: str) -> str:
        """What ``name`` does without an answer, as configured: "closed" or "open"."""
        return self.deps["lookups"][name].policy

    @property
    def slots(self):
        """The slot holds (``validation.slots.SlotHolds``): hold, book, release a time slot."""
        self.effect()
        return self.deps["slots"]

    def dependency(self, name: str):
        """Anything else the app hands handlers (``"slots"``, ``"metrics"``), by name."""
        self.effect()
        return self.deps[name]

    def effect(self) -> None:
        """Say the handler is about to do something beyond reading (the token is checked first)."""
        if self.before_effect is not None:
            self.before_effect()

    def carry(self, **values) -> None:
        """Keep values on the session: later screens and a recovery resend's prefill read them.

        Written with the reply, in the round trip that records the screen shown (the engine's
        ``SessionStore.commit``), and never read back first: a handler that raises keeps nothing.
        """
        self.to_carry.update(values)
        if self._carried is not None:
            self._carried.update(values)


Handler = Callable[[Context], object]
POLICIES = ("closed", "open")


@dataclass(frozen=True)
class Lookup:
    """A business API a flow's handlers call, declared with the flow so that no framework file
    names it: config.py reads ``<settings>_URL``, ``_AUTH``, ``_POLICY``, ``_TIMEOUT`` and
    ``_CACHE_TTL``, and production refuses to start while a served flow's lookup has no URL."""

    name: str  # what handlers and Fields call it: ``ctx.lookup("members", value)``
    settings: str  # the settings prefix, ending in _API: MEMBER_API → MEMBER_API_URL, ...
    policy: str = "closed"  # no answer: "closed" refuses the value, "open" accepts it unverified
    path: str = ""  # its path under LOOKUP_BASE_URL, when it has no URL of its own

    def __post_init__(self):
        if not self.settings.endswith("_API") or not self.settings.replace("_", "").isalnum() \
                or self.settings.upper() != self.settings:
            raise ValueError(f"lookup {self.name!r}: settings prefix {self.settings!r} must be "
                             "upper case and end in _API (e.g. MEMBER_API)")
        if self.policy not in POLICIES:
            raise ValueError(f"lookup {self.name!r}: policy {self.policy!r} is not one of {POLICIES}")


# The categories Meta's Flows API accepts for a Flow (``POST /<WABA_ID>/flows``; docs/meta-facts.md).
CATEGORIES = ("SIGN_UP", "SIGN_IN", "APPOINTMENT_BOOKING", "LEAD_GENERATION", "CONTACT_US",
              "CUSTOMER_SUPPORT", "SURVEY", "OTHER")


class Flow:
    def __init__(self, name: str, json_path: Path, title: str | None = None, lookups: tuple = (),
                 recovery: str | None = None, quiet_hours: str | None = None,
                 categories: tuple[str, ...] = ("OTHER",)):
        self.name = name
        self.json_path = Path(json_path)
        self.title = title or name.replace("_", " ").title()
        # What the Flow is for, as Meta files it (CATEGORIES): `flask flows deploy` creates it so.
        self.categories = tuple(categories)
        # The business APIs its handlers call: production refuses to serve the flow while one
        # has no URL.
        self.declared_lookups: tuple[Lookup, ...] = tuple(lookups)
        self.lookups = tuple(lookup.name for lookup in self.declared_lookups)
        # Its own recovery ladder ("1h,23h") and quiet hours ("20:00-09:00"); None: the
        # configured RECOVERY_STEPS and QUIET_HOURS.
        self.recovery = recovery
        self.quiet_hours = quiet_hours
        self._on_complete: list[Callable] = []
        self._handlers: dict[tuple[str, str | None], Handler] = {}

    # --- registration ---------------------------------------------------------------------
    def on(self, action: str, screen: str | None = None):
        def register(fn: Handler) -> Handler:
            self._handlers[(action, screen)] = fn
            return fn

        return register

    def on_init(self, fn: Handler) -> Handler:
        return self.on("INIT")(fn)

    def on_exchange(self, screen: str):
        return self.on("data_exchange", screen)

    def on_back(self, screen: str):
        return self.on("BACK", screen)

    def on_submit(self, screen: str, form, data: Callable[[Context], dict] | None = None):
        """A data_exchange handler bound to a form (``validation.forms.Form``): the framework
        checks the submitted fields (local checks, then their lookups) and, while any fails,
        comes back to ``screen`` with every field's error by itself. The handler runs only with
        valid values, as ``fn(ctx, result)``; a ``result.fail(field, text)`` in it also brings
        the same screen back, with that error. ``data(ctx)`` adds what else the screen shows
        when it comes back (a basket, a caption)::

            @flow.on_submit("ORDER", ORDER)
            def order(ctx, result):
                return Screen("REVIEW", {...result.values...})
        """
        def register(fn):
            def handler(ctx):
                result = form.check(ctx)
                if result.ok:
                    reply = fn(ctx, result)
                    if result.ok:
                        return reply
                return result.screen(screen, data(ctx) if data else None)

            handler.__name__, handler.__wrapped__ = fn.__name__, fn
            handler.form, handler.screen, handler.again = form, screen, data  # what the linter reads
            self._handlers[("data_exchange", screen)] = handler
            return fn

        return register

    def on_complete(self, fn: Callable) -> Callable:
        """Run ``fn(submission_id, flow_token)`` in the completion job once this flow's
        submission is stored, after the global POST_COMPLETION_HOOKS (workers/completion.py).
        Like them it must be idempotent: a retried completion runs it again."""
        self._on_complete.append(fn)
        return fn

    @property
    def completion_hooks(self) -> list[Callable]:
        return list(self._on_complete)

    def handler_for(self, action: str, screen: str | None) -> Handler | None:
        return self._handlers.get((action, screen)) or self._handlers.get((action, None))

    @property
    def handlers(self) -> dict:
        return dict(self._handlers)

    # --- the Flow JSON ----------------------------------------------------------------------
    @cached_property
    def definition(self) -> dict:
        return json.loads(self.json_path.read_text())

    @cached_property
    def screen_ids(self) -> list[str]:
        return [s["id"] for s in self.definition.get("screens", [])]

    @cached_property
    def entry_screen(self) -> str:
        routing = self.definition.get("routing_model") or {}
        targets = {t for edges in routing.values() for t in edges}
        for sid in self.screen_ids:
            if sid not in targets:
                return sid
        return self.screen_ids[0]

    def has_screen(self, screen: str | None) -> bool:
        return screen in self.screen_ids

    def reply_problems(self, source: str | None, action: str, screen: str, data: dict) -> list[str]:
        """What Meta's client would reject in a reply showing ``screen`` with ``data``: keys the
        screen does not declare, a move ``routing_model`` does not allow. The development-mode
        check of every reply (FLOW_REPLY_CHECK), where the linter cannot read the code."""
        target = next((s for s in self.definition.get("screens", []) if s.get("id") == screen), None)
        if target is None:
            return [f"screen {screen!r} is not in the Flow JSON"]
        declared = set(target.get("data") or {}) | {"error_message"}
        problems = [f"data key {key!r} is not declared in {screen}'s data"
                    for key in sorted(set(data) - declared)]
        routing = self.definition.get("routing_model") or {}
        if routing and action == "data_exchange" and source and source != screen:
            forward = screen in (routing.get(source) or [])
            back, stack = set(), [screen]
            while stack:
                for nxt in routing.get(stack.pop()) or []:
                    if nxt not in back:
                        back.add(nxt)
                        stack.append(nxt)
            if not forward and source not in back:
                problems.append(f"{source} → {screen} is not in routing_model")
        return problems


class Registry:
    """Name → Flow. One registry per app; the catalog fills it."""

    def __init__(self, flows=()):
        self._flows: dict[str, Flow] = {}
        for flow in flows:
            self.add(flow)

    def add(self, flow: Flow) -> None:
        if flow.name in self._flows:
            raise ValueError(f"flow {flow.name!r} registered twice")
        self._flows[flow.name] = flow

    def get(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def __iter__(self):
        return iter(self._flows.values())

    def names(self) -> list[str]:
        return sorted(self._flows)
