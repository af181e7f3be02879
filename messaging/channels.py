"""The channels an ``Outbound`` can take, each rendering it in its own API's shape; which one
carries a message is decided in one place, ``messaging.router.Router``.

- ``CloudChannel``: inside the 24-hour window an interactive Flow (or text / reply buttons);
  outside it only an approved template with a FLOW button works (protocol doc 8.1–8.3). It hands
  the message to the Cloud API (``messaging.cloud.CloudApi``) or, as the console channel, to the
  console outbox (``messaging.console.ConsoleChannel``), which then shows exactly what would have
  been sent.
- ``WASenderChannel``: plain text (it cannot carry a Flow), with the reply keywords spelled out.
"""
from __future__ import annotations

import logging
import re

from messaging import cloud
from messaging.graph import NEEDS_TEMPLATE, GraphError
from messaging.outbound import Delivery, Outbound

log = logging.getLogger("flowgate.channels")
TAP_BELOW = re.compile(r"\b([Tt])ap below\b")


class CloudChannel:
    """Renders an ``Outbound`` with the Cloud API builders (``messaging.cloud``) and hands it to a
    transport: ``CloudApi`` (the Graph API), or the console outbox."""

    def __init__(self, transport, templates: dict, flow_ids: dict | None = None,
                 always_in_window: bool = False, remembered=None):
        self.transport = transport
        self.name = transport.name
        self.templates = templates  # flow name → (template name, language code)
        self.flow_ids = flow_ids or {}  # FLOW_IDS: an override
        # The Flow IDs `flask flows deploy` remembered (flows.on_meta.FlowIdStore): a Flow is sent
        # by the ID of the Flow deployed, whatever its name on Meta (a clone's differs).
        self.remembered = remembered
        self.always_in_window = always_in_window  # the console has no window to respect

    def send(self, out: Outbound, in_window: bool) -> Delivery:
        message = self.render(out, in_window or self.always_in_window)
        wamid = self.transport.send(out.to, message, out.key, out.sender_id)
        template = message.get("template") if message["type"] == "template" else None
        return Delivery(self.name, wamid, message["type"], template=(template or {}).get("name"))

    def render(self, out: Outbound, in_window: bool) -> dict:
        if out.contact_request:
            # A template: it goes out inside or outside the window (messaging.router: unreachable).
            return cloud.contact_request(name=out.contact_request[0], language=out.contact_request[1])
        if not in_window:
            template = self.templates.get(out.flow_name or "")
            if template is None:
                # What Meta would answer (131047); refused here without spending a request.
                raise GraphError(NEEDS_TEMPLATE, 0, 131047, "outside the 24-hour window and no template")
            return cloud.template(name=template[0], language=template[1], flow_token=out.flow_token,
                                  flow_action_data=out.prefill or None)
        if out.document_url or out.image_url:
            kind = "document" if out.document_url else "image"
            return cloud.media(kind, out.document_url or out.image_url, caption=out.text or None,
                               file_name=out.file_name)
        if out.buttons:
            # Inside the window a recovery or fallback message asks first (Resume / Stop quick
            # replies); the Flow itself follows the tap on Resume (workers/conversation.py).
            return cloud.buttons(out.text, out.buttons)
        if out.flow_name:
            flow_id = self.flow_ids.get(out.flow_name) or (
                self.remembered.flow_id(out.flow_name) if self.remembered is not None else None)
            navigate = bool(out.prefill and out.screen)
            # navigate opens on the entry screen with the prefill; data_exchange makes the endpoint
            # answer INIT, which prefills from the session itself.
            return cloud.flow(flow_token=out.flow_token, body=out.text, cta=out.cta[:cloud.FLOW_CTA_MAX],
                              flow_id=flow_id, flow_name=None if flow_id else out.flow_name,
                              action=cloud.NAVIGATE if navigate else cloud.DATA_EXCHANGE,
                              screen=out.screen if navigate else None,
                              data=out.prefill if navigate else None)
        return cloud.text(out.text)


class WASenderChannel:
    name = "wasender"

    def __init__(self, client, keywords: tuple[str, ...] = ("RESUME", "STOP")):
        self.client = client
        self.keywords = keywords

    @property
    def configured(self) -> bool:
        return self.client.configured

    def send(self, out: Outbound, in_window: bool) -> Delivery:
        if not out.to.phone:  # the router never routes here without one (WASender is phone-only)
            raise ValueError("WASender needs a phone number")
        text = out.text
        if out.flow_name or out.buttons:
            # Nothing to tap in a WASender text: the recovery texts' "tap below" becomes the keyword.
            text = TAP_BELOW.sub(lambda m: ("R" if m.group(1) == "T" else "r") + "eply RESUME", text)
            # The keywords the intents know, spelled the way a user would type them back.
            text += "\n\n" + " · ".join(f"Reply {k.upper()}" for k in (out.buttons or self.keywords))
        msg_id = self.client.send(out.to.phone, text, document_url=out.document_url, image_url=out.image_url,
                                  file_name=out.file_name)
        kind = "document" if out.document_url else "image" if out.image_url else "text"
        return Delivery(self.name, msg_id, kind)
