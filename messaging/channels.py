"""The channels an ``Outbound`` can take, each rendering it in its own API's shape.

- ``CloudChannel``: inside the 24-hour window an interactive Flow (or text / reply buttons);
  outside it only an approved template with a FLOW button works (protocol doc 8.1–8.3).
- ``WASenderChannel``: plain text (it cannot carry a Flow), with the reply keywords spelled out.
- ``ConsoleChannel``: development; the message lands in a Redis list the CLI and dashboard show.
"""
from __future__ import annotations

import json
import logging
import time

from flows.contacts import mask
from messaging.graph import NEEDS_TEMPLATE, GraphClient, GraphError
from messaging.outbound import Delivery, Outbound

log = logging.getLogger("flowgate.channels")

CONSOLE_OUTBOX = "fg:console:outbox"
CONSOLE_OUTBOX_LENGTH = 200


class CloudChannel:
    name = "cloud"

    def __init__(self, graph: GraphClient, templates: dict, flow_ids: dict | None = None):
        self.graph = graph
        self.templates = templates  # flow name → (template name, language code)
        self.flow_ids = flow_ids or {}

    @property
    def configured(self) -> bool:
        return bool(self.graph.access_token and self.graph.phone_number_id)

    def send(self, out: Outbound, in_window: bool) -> Delivery:
        payload = self.render(out, in_window)
        body = self.graph.request("POST", f"{self.graph.phone_number_id}/messages", json=payload)
        wamid = ((body.get("messages") or [{}])[0]).get("id", "")
        return Delivery(self.name, wamid, payload["type"])

    def render(self, out: Outbound, in_window: bool) -> dict:
        base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": out.to}
        if not in_window:
            template = self.templates.get(out.flow_name or "")
            if template is None:
                # What Meta would answer (131047); refused here without spending a request.
                raise GraphError(NEEDS_TEMPLATE, 0, 131047, "outside the 24-hour window and no template")
            return {**base, "type": "template", "template": self._template(out, *template)}
        if out.buttons:
            # Inside the window a recovery or fallback message asks first (Resume / Stop quick
            # replies); the Flow itself follows the tap on Resume (workers/conversation.py).
            buttons = [{"type": "reply", "reply": {"id": b.lower(), "title": b[:20]}} for b in out.buttons[:3]]
            return {**base, "type": "interactive", "interactive": {
                "type": "button", "body": {"text": out.text}, "action": {"buttons": buttons}}}
        if out.flow_name:
            return {**base, "type": "interactive", "interactive": self._flow(out)}
        return {**base, "type": "text", "text": {"body": out.text, "preview_url": False}}

    def _flow(self, out: Outbound) -> dict:
        parameters = {"flow_message_version": "3", "flow_token": out.flow_token, "flow_cta": out.cta[:30]}
        flow_id = self.flow_ids.get(out.flow_name)
        # flow_id or flow_name, never both (flow_name is Cloud-API only).
        parameters.update({"flow_id": flow_id} if flow_id else {"flow_name": out.flow_name})
        if out.prefill and out.screen:
            parameters.update(flow_action="navigate",
                              flow_action_payload={"screen": out.screen, "data": out.prefill})
        else:
            parameters["flow_action"] = "data_exchange"  # INIT reaches the endpoint, which prefills
        return {"type": "flow", "body": {"text": out.text},
                "action": {"name": "flow", "parameters": parameters}}

    @staticmethod
    def _template(out: Outbound, name: str, language: str) -> dict:
        action = {"flow_token": out.flow_token}
        if out.prefill:
            action["flow_action_data"] = out.prefill
        return {"name": name, "language": {"code": language}, "components": [
            {"type": "button", "sub_type": "flow", "index": "0",
             "parameters": [{"type": "action", "action": action}]}]}


class WASenderChannel:
    name = "wasender"

    def __init__(self, client, keywords: tuple[str, ...] = ("RESUME", "STOP")):
        self.client = client
        self.keywords = keywords

    @property
    def configured(self) -> bool:
        return self.client.configured

    def send(self, out: Outbound, in_window: bool) -> Delivery:
        text = out.text
        if out.flow_name or out.buttons:
            text += "\n\n" + " · ".join(f"Reply {k}" for k in (out.buttons or self.keywords))
        msg_id = self.client.send(out.to, text, document_url=out.document_url, image_url=out.image_url)
        return Delivery(self.name, msg_id, "text")


class ConsoleChannel:
    name = "console"
    configured = True

    def __init__(self, redis):
        self.redis = redis

    def send(self, out: Outbound, in_window: bool) -> Delivery:
        entry = {"at": round(time.time(), 3), "channel": "console", "to": out.to, "text": out.text,
                 "flow": out.flow_name,
                 "flow_token": out.flow_token, "prefill": out.prefill, "key": out.key}
        pipe = self.redis.pipeline()
        pipe.lpush(CONSOLE_OUTBOX, json.dumps(entry))
        pipe.ltrim(CONSOLE_OUTBOX, 0, CONSOLE_OUTBOX_LENGTH - 1)
        pipe.execute()
        log.info("console message to %s: %s", mask(out.to), out.key)
        return Delivery(self.name, f"console-{out.key}", "console")
