"""One outbound message, whatever channel carries it.

A Flow sent, a recovery step, a reply, a receipt or a confirmation is described once as an
``Outbound``; the router (``messaging.router``, the one place that decides) picks the channel and
each channel renders it in its own API's shape (a Cloud API interactive Flow, a template with a FLOW
button, or WASender's plain text with keywords).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flows.identity import User, coerce


@dataclass
class Outbound:
    to: User  # who: a phone number, a BSUID, or both (a plain phone string is taken too)
    text: str
    key: str  # idempotency key: one per (session, step) or (message, effect)
    flow_name: str | None = None  # set → the message should open this Flow
    flow_token: str | None = None
    screen: str | None = None  # entry screen for navigate
    prefill: dict = field(default_factory=dict)  # first screen's data
    cta: str = "Continue"
    buttons: tuple[str, ...] = ()  # quick replies (Resume / Stop) where the channel has them
    document_url: str | None = None  # media by link (a receipt): the channel fetches it
    image_url: str | None = None
    file_name: str | None = None  # the document's name as the user sees it
    sender_id: str | None = None  # Cloud API: reply from the number the user wrote to (default: ours)
    # (template name, language) of a REQUEST_CONTACT_INFO template: ask for the user's number
    contact_request: tuple[str, str] | None = None

    def __post_init__(self):
        self.to = coerce(self.to)


@dataclass
class Delivery:
    channel: str  # cloud | wasender | console
    message_id: str
    detail: str = ""  # what was sent: the Cloud API's message type (text, interactive, template, ...)
    template: str | None = None  # the template's name, when one was sent (the message log keeps it)

    def to_dict(self) -> dict:
        """What an exactly-once record keeps (JSON)."""
        return {"channel": self.channel, "message_id": self.message_id, "detail": self.detail,
                "template": self.template}
