"""The decrypted request and the replies a handler can give (protocol doc, section 2).

Plain data, no HTTP: a blueprint, the simulator and the tests all speak these types.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

ACTIONS = ("ping", "INIT", "BACK", "data_exchange")
# Error notifications may also arrive with action "navigate" (protocol doc, corrections): only those.
NOTIFICATION_ACTIONS = ("navigate",)
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
        """One rule per field, whatever the value: absent or null is the default; the expected
        type is the value; any other type (0, false, [], {} as much as 5) is a ProtocolError.
        Text that cannot be encoded (a lone surrogate written as a JSON escape) anywhere in the
        request is one too: nothing downstream (Redis, the reply, a log) could carry it."""
        if not isinstance(payload, dict):
            raise ProtocolError("the decrypted request is not a JSON object")
        _check_encodable(payload)
        action = payload.get("action")
        if not isinstance(action, str) or action not in ACTIONS + NOTIFICATION_ACTIONS:
            raise ProtocolError("unknown action")
        data = _optional(payload, "data", dict, "an object") or {}
        for key in ERROR_KEYS:
            _optional(data, key, str, "a string", where="data.")
        request = cls(
            action=action,
            version=_optional(payload, "version", str, "a string") or "3.0",
            screen=_optional(payload, "screen", str, "a string") or None,  # pywa too reads "" as none
            data=data,
            flow_token=_optional(payload, "flow_token", str, "a string") or None,
        )
        if action in NOTIFICATION_ACTIONS and not request.is_error_notification:
            raise ProtocolError("unknown action")
        return request

    @property
    def is_error_notification(self) -> bool:
        return self.action != "ping" and any(self.data.get(k) is not None for k in ERROR_KEYS)

    @property
    def error_key(self) -> str:
        """What an error notification reports (``error``, or ``error_key``), for logs and metrics."""
        return next((str(self.data[k]) for k in ("error", "error_key") if self.data.get(k)), "unspecified")


def _optional(mapping: dict, name: str, kind: type, what: str, where: str = ""):
    value = mapping.get(name)
    if value is None or isinstance(value, kind):
        return value
    raise ProtocolError(f"{where}{name} is not {what}")


def _check_encodable(payload: dict) -> None:
    try:
        json.dumps(payload, ensure_ascii=False, check_circular=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("the request carries text that is not valid Unicode (a lone surrogate)") from None
    except RecursionError:
        raise ProtocolError("the request is nested too deeply") from None


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
