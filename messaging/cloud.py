"""Cloud API messages (protocol doc 8): text, template with a FLOW button, interactive Flow.

The builders return the type-specific part of a message; ``CloudApi.send`` wraps it in the
envelope (``messaging_product`` and the recipient: ``to`` with a phone number, or ``recipient``
with a business-scoped user ID when no phone is known) and posts it through the shared
``GraphClient``, which raises ``GraphError`` classified as retryable / needs_template / permanent.
"""
from __future__ import annotations

from flows.identity import User, coerce
from messaging.graph import PERMANENT, GraphClient, GraphError

FLOW_MESSAGE_VERSION = "3"
NAVIGATE, DATA_EXCHANGE = "navigate", "data_exchange"
# The Flow message's button text: at most 20 characters, no emoji (whatsapp-api-js, pywa, Sinch;
# docs/meta-facts.md). A longer one is refused by Meta, so the builder refuses it first.
FLOW_CTA_MAX = 20


def text(body: str, preview_url: bool = False) -> dict:
    return {"type": "text", "text": {"body": body, "preview_url": preview_url}}


def flow(*, flow_token: str, body: str, cta: str, flow_id: str | None = None,
         flow_name: str | None = None, action: str = NAVIGATE, screen: str | None = None,
         data: dict | None = None, header: str | None = None, footer: str | None = None,
         mode: str = "published") -> dict:
    """An interactive Flow message (doc 8.1): ``flow_id`` or ``flow_name``, never both;
    ``flow_action_payload`` only with ``navigate`` (``data_exchange`` makes the endpoint get INIT)."""
    if bool(flow_id) == bool(flow_name):
        raise ValueError("give exactly one of flow_id and flow_name")
    if action not in (NAVIGATE, DATA_EXCHANGE):
        raise ValueError("action must be navigate or data_exchange")
    if action == DATA_EXCHANGE and (screen or data):
        raise ValueError("screen/data are for navigate; data_exchange opens with INIT")
    if not cta or len(cta) > FLOW_CTA_MAX:
        raise ValueError(f"flow_cta must be 1 to {FLOW_CTA_MAX} characters")
    parameters = {"flow_message_version": FLOW_MESSAGE_VERSION, "flow_token": flow_token,
                  "flow_cta": cta, "flow_action": action, "mode": mode}
    parameters.update({"flow_id": flow_id} if flow_id else {"flow_name": flow_name})
    if action == NAVIGATE and (screen or data):
        payload = {"screen": screen or "FIRST_ENTRY_SCREEN"}
        if data:  # optional, but never an empty object
            payload["data"] = data
        parameters["flow_action_payload"] = payload
    interactive = {"type": "flow", "body": {"text": body},
                   "action": {"name": "flow", "parameters": parameters}}
    if header:
        interactive["header"] = {"type": "text", "text": header}
    if footer:
        interactive["footer"] = {"text": footer}
    return {"type": "interactive", "interactive": interactive}


def template(*, name: str, language: str, flow_token: str, flow_action_data: dict | None = None,
             button_index: int = 0, body_parameters: list[str] | None = None) -> dict:
    """A template whose button is a FLOW button (doc 8.2): outside the 24 h window only templates
    may be sent."""
    action = {"flow_token": flow_token}
    if flow_action_data:
        action["flow_action_data"] = flow_action_data
    components = []
    if body_parameters:
        components.append({"type": "body",
                           "parameters": [{"type": "text", "text": p} for p in body_parameters]})
    components.append({"type": "button", "sub_type": "flow", "index": str(button_index),
                       "parameters": [{"type": "action", "action": action}]})
    return {"type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components}}


def contact_request(*, name: str, language: str) -> dict:
    """An approved utility or marketing template with a REQUEST_CONTACT_INFO button: the user
    can share their phone number with one tap. The button takes no parameters."""
    return {"type": "template", "template": {"name": name, "language": {"code": language}}}


def buttons(body: str, titles: tuple[str, ...]) -> dict:
    """An interactive message with up to three quick-reply buttons (id = the title, lower-case)."""
    return {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": t.lower(), "title": t[:20]}}
                               for t in titles[:3]]}}}


def media(kind: str, link: str, caption: str | None = None, file_name: str | None = None) -> dict:
    """An image or document sent by ``link``: Meta downloads it from there (JPEG/PNG images up to
    5 MB, documents up to 100 MB); a failure comes back as 131052/131053, at once or in a status."""
    if kind not in ("image", "document"):
        raise ValueError("kind must be image or document")
    body = {"link": link}
    if caption:
        body["caption"] = caption[:1024]
    if kind == "document" and file_name:
        body["filename"] = file_name
    return {"type": kind, kind: body}


def envelope(to: User | str, message: dict, callback: str | None = None) -> dict:
    """``to``: a ``User`` (``to`` with its phone, else ``recipient`` with its BSUID) or a phone."""
    body = {"messaging_product": "whatsapp", "recipient_type": "individual",
            **coerce(to).address(), **message}
    if callback:
        # Echoed back in this message's status webhooks: lets a status be tied to our effect key.
        body["biz_opaque_callback_data"] = callback[:512]
    return body


class CloudApi:
    """The Cloud API's messages edge: posts one ready message. Which messages go here, and in
    what shape, is ``messaging.channels.CloudChannel``'s and ``messaging.router``'s to decide."""

    name = "cloud"

    def __init__(self, graph: GraphClient):
        self.graph = graph

    def send(self, to: User | str, message: dict, callback: str | None = None,
             sender_id: str | None = None) -> str:
        """POST /<phone_number_id>/messages; returns the wamid, or raises GraphError.

        ``sender_id``: the business number to send from — a reply goes out from the number the
        user wrote to (the webhook's ``metadata.phone_number_id``); default WHATSAPP_PHONE_NUMBER_ID.
        """
        sender_id = sender_id or self.graph.phone_number_id
        if not sender_id:
            # A configuration fault: no retry will fix it, so it is reported like Meta's permanent errors.
            raise GraphError(PERMANENT, 0, None, "WHATSAPP_PHONE_NUMBER_ID is not set")
        reply = self.graph.request("POST", f"{sender_id}/messages", json=envelope(to, message, callback))
        messages = reply.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id", ""))
        return ""
