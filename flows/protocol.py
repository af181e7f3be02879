"""The decrypted request and the replies a handler can give (protocol doc, section 2).

Plain data, no HTTP: a blueprint, the simulator and the tests all speak these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ACTIONS = ("ping", "INIT", "BACK", "data_exchange")
ERROR_KEYS = ("error", "error_key", "error_message")
SUCCESS = "SUCCESS"


class ProtocolError(Exception):
    """The plaintext decrypted but is not a Flows request: answered with 400."""


@dataclass(frozen=True)
class FlowRequest:
    action: str
    version: str = "3.0"
    screen: str | None = None
    data: dict = field(default_factory=dict)
    flow_token: str | None = None

    @classmethod
    def parse(cls, payload) -> "FlowRequest":
        if not isinstance(payload, dict):
            raise ProtocolError("the decrypted request is not a JSON object")
        action = payload.get("action")
        if action not in ACTIONS:
            raise ProtocolError("unknown action")
        data = payload.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ProtocolError("data is not an object")
        screen = payload.get("screen") or None  # pywa too reads "" as no screen
        token = payload.get("flow_token") or None
        if screen is not None and not isinstance(screen, str):
            raise ProtocolError("screen is not a string")
        if token is not None and not isinstance(token, str):
            raise ProtocolError("flow_token is not a string")
        return cls(
            action=action,
            version=str(payload.get("version") or "3.0"),
            screen=screen,
            data=data,
            flow_token=token,
        )

    @property
    def is_error_notification(self) -> bool:
        return self.action != "ping" and any(k in self.data for k in ERROR_KEYS)


def strip_none(value):
    """Flows type-check with JSON Type Definition, which has no null: drop None everywhere."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [strip_none(v) for v in value if v is not None]
    return value


@dataclass
class Screen:
    """Show ``name`` with ``data``; ``error_message`` pops the snackbar."""

    name: str
    data: dict = field(default_factory=dict)
    error_message: str | None = None

    def to_json(self) -> dict:
        data = dict(self.data)
        if self.error_message:
            data["error_message"] = self.error_message
        return {"screen": self.name, "data": strip_none(data)}


@dataclass
class Finish:
    """Close the Flow: everything in ``params`` reaches the completion webhook's response_json."""

    params: dict = field(default_factory=dict)

    def to_json(self, flow_token: str | None) -> dict:
        params = dict(self.params)
        params["flow_token"] = flow_token or params.get("flow_token") or "unused"
        return {"screen": SUCCESS, "data": {"extension_message_response": {"params": strip_none(params)}}}


@dataclass
class TokenRejected:
    """Answered with 427: the Flow closes and the CTA is disabled; ``message`` is shown."""

    message: str


PING_REPLY = {"data": {"status": "active"}}
ACK_REPLY = {"data": {"acknowledged": True}}
