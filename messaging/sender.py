"""What jobs call to message a user: the configured channel plus Flow bookkeeping.

``app.extensions["sender"]``. A Flow message issues its session (state ``sent``) before it goes
out, so an endpoint request racing the send finds it, and records its wamid afterwards, so a
completion without ``flow_token`` can still be tied to it (``stores.correlation``).
"""
from __future__ import annotations

from stores.correlation import Correlation
from messaging import cloud
from messaging.router import Refused


class NotSent(Exception):
    """The channel sends nothing (FOLLOWUP_CHANNEL=none)."""


class NoChannel:
    """FOLLOWUP_CHANNEL=none: validation without messaging. Callers check ``name`` and skip."""

    name = "none"

    def send(self, to: str, message: dict, callback: str | None = None, sender_id: str | None = None) -> str:
        raise NotSent("FOLLOWUP_CHANNEL=none: this deployment sends nothing")


class Sender:
    def __init__(self, channel, correlation: Correlation, opted_out=None):
        self.channel = channel
        self.correlation = correlation
        # The consent check every send passes (stores.contacts.Contacts.opted_out: the ledger).
        self.opted_out = opted_out

    @property
    def channel_name(self) -> str:
        return self.channel.name

    def text(self, to: str, body: str, callback: str | None = None, sender_id: str | None = None) -> str:
        self._consent(to)
        return self.channel.send(to, cloud.text(body), callback, sender_id)

    def _consent(self, to) -> None:
        if self.opted_out is not None and self.opted_out(to):
            raise Refused("user opted out")

    def flow(self, to: str, *, flow_token: str, session_flow: str, callback: str | None = None,
             **message) -> str:
        """``message``: the keyword arguments of ``messaging.cloud.flow`` (body, cta, flow_id or
        flow_name, action, screen, data, header, footer, mode); ``session_flow`` is our registry's
        name for the Flow (what the endpoint path says)."""
        return self._carrying(to, cloud.flow(flow_token=flow_token, **message), flow_token,
                              session_flow, callback, "flow_message_sent")

    def template(self, to: str, *, flow_token: str, session_flow: str, callback: str | None = None,
                 **template) -> str:
        return self._carrying(to, cloud.template(flow_token=flow_token, **template), flow_token,
                              session_flow, callback, "template_sent")

    def _carrying(self, to: str, payload: dict, flow_token: str, session_flow: str,
                  callback: str | None, event: str) -> str:
        """Send a message that carries a Flow: its session exists before it leaves, its wamid is
        remembered after (a completion without flow_token names it by context.id)."""
        self._consent(to)
        self.correlation.issue(flow_token, session_flow)
        wamid = self.channel.send(to, payload, callback)
        self.correlation.remember(wamid, flow_token)
        self.correlation.sessions.note(flow_token, event, self.channel.name)
        return wamid
