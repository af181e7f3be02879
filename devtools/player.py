"""Walks a Flow the way the WhatsApp client does, screen by screen, with given field values.

Reads the Flow JSON to find each screen's inputs and Footer action, resolves ``${form.x}`` and
``${data.x}`` in action payloads, fires ``on-select-action`` data exchanges for fields that have
one (a date that loads slots), and talks to the endpoint through a ``FlowClient``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from devtools.simulator import FlowClient, Reply

BINDING = re.compile(r"^\$\{(data|form)\.([A-Za-z0-9_]+)\}$")
INPUT_TYPES = {"TextInput", "TextArea", "Dropdown", "RadioButtonsGroup", "CheckboxGroup",
               "DatePicker", "CalendarPicker", "OptIn", "ChipsSelector"}


@dataclass
class Step:
    screen: str
    data: dict = field(default_factory=dict)
    reply: Reply | None = None
    note: str = ""

    @property
    def error(self) -> str | None:
        return self.data.get("error_message")


def walk_components(children):
    """Every component, including those inside Form, If and Switch."""
    for comp in children or []:
        yield comp
        yield from walk_components(comp.get("children"))
        yield from walk_components(comp.get("then"))
        yield from walk_components(comp.get("else"))
        for case in (comp.get("cases") or {}).values():
            yield from walk_components(case)


def screen_def(flow_json: dict, screen_id: str) -> dict:
    return next((s for s in flow_json.get("screens", []) if s.get("id") == screen_id), {})


def resolve(value, data: dict, form: dict):
    if isinstance(value, dict):
        return {k: resolve(v, data, form) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, data, form) for v in value]
    if isinstance(value, str):
        m = BINDING.match(value)
        if m:
            source = data if m.group(1) == "data" else form
            return source.get(m.group(2), "")
    return value


class Player:
    def __init__(self, flow_json: dict, client: FlowClient, token: str | None, fields: dict,
                 max_steps: int = 20):
        self.flow_json = flow_json
        self.client = client
        self.token = token
        self.fields = dict(fields)
        self.max_steps = max_steps
        # WhatsApp sends the Flow's data_api_version as every request's version.
        self.version = str(flow_json.get("data_api_version") or "3.0")

    def form_values(self, sdef: dict, data: dict) -> dict:
        form = {}
        for comp in walk_components(sdef.get("layout", {}).get("children")):
            name = comp.get("name")
            if comp.get("type") in INPUT_TYPES and name:
                if name in self.fields:
                    form[name] = self.fields[name]
                elif "init-value" in comp:
                    form[name] = resolve(comp["init-value"], data, {})
        return form

    def run(self):
        """Yields a Step per screen shown, ending with SUCCESS, a refusal or a stuck screen."""
        reply = self.client.init(self.token, version=self.version)
        last_error_screen = None
        for _ in range(self.max_steps):
            if reply.status != 200 or reply.body is None:
                msg = (reply.body or {}).get("error_msg", "")
                yield Step("", {}, reply, f"HTTP {reply.status} {msg}".strip())
                return
            screen, data = reply.screen, reply.data
            yield Step(screen, data, reply)
            if screen == "SUCCESS":
                return
            if data.get("error_message"):
                if last_error_screen == screen:
                    yield Step(screen, data, reply, "stuck: the same error twice")
                    return
                last_error_screen = screen
            sdef = screen_def(self.flow_json, screen)
            form = self.form_values(sdef, data)
            reply = self._select_actions(sdef, screen, data, form) or reply
            if reply.screen != screen or reply.data.get("error_message"):
                continue
            data = {**data, **reply.data}
            footer = next((c for c in walk_components(sdef.get("layout", {}).get("children"))
                           if c.get("type") == "Footer"), None)
            if footer is None:
                yield Step(screen, data, reply, "no Footer on this screen")
                return
            action = footer.get("on-click-action", {})
            payload = resolve(action.get("payload", {}), data, form)
            if action.get("name") == "data_exchange":
                reply = self.client.exchange(self.token, screen, payload, version=self.version)
            elif action.get("name") == "navigate":
                nxt = action.get("next", {}).get("name")
                reply = Reply(200, {"screen": nxt, "data": payload}, "", 0.0)
            elif action.get("name") == "complete":
                yield Step("SUCCESS", {"complete_payload": payload}, None, "completed in the client")
                return
            else:
                yield Step(screen, data, reply, f"unsupported action {action.get('name')}")
                return
        yield Step("", {}, reply, "too many steps")

    def _select_actions(self, sdef, screen, data, form):
        """Fire on-select-action data exchanges for fields we were given values for."""
        reply = None
        for comp in walk_components(sdef.get("layout", {}).get("children")):
            action = comp.get("on-select-action") or {}
            if comp.get("name") in self.fields and action.get("name") == "data_exchange":
                payload = resolve(action.get("payload", {}), data, form)
                reply = self.client.exchange(self.token, screen, payload, version=self.version)
                if reply.status != 200 or reply.screen != screen:
                    return reply
                data = {**data, **reply.data}
        return reply
