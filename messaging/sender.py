"""What jobs call to message a user: the configured channel plus Flow bookkeeping.

``app.extensions["sender"]``. A Flow message issues its session (state ``sent``) before it goes
out, so an endpoint request racing the send finds it, and records its wamid afterwards, so a
completion without ``flow_token`` can still be tied to it (``flows.correlation``).
"""
from __future__ import annotations

from flows.correlation import Correlation
from messaging import cloud


class Sender:
    def __init__(self, channel, correlation: Correlation):
        self.channel = channel
        self.correlation = correlation

    @property
    def channel_name(self) -> str:
        return self.channel.name

    def text(self, to: str, body: str, callback: str | None = None, sender_id: str | None = None) -> str:
        return self.channel.send(to, cloud.text(body), callback, sender_id)

    def flow(self, to: str, *, flow_token: str, session_flow: str, callback: str | None = None,
             **message) -> str:
        """``message``: the keyword arguments of ``messaging.cloud.flow`` (body, cta, flow_id or
        flow_name, action, screen, data, header, footer, mode); ``session_flow`` is our registry's
        name for the Flow (what the endpoint path says)."""
        payload = cloud.flow(flow_token=flow_token, **message)
        self.correlation.issue(flow_token, session_flow)
        wamid = self.channel.send(to, payload, callback)
        self.correlation.remember(wamid, flow_token)
        self.correlation.sessions.note(flow_token, "flow_message_sent", self.channel.name)
        return wamid

    def template(self, to: str, *, flow_token: str, session_flow: str, callback: str | None = None,
                 **template) -> str:
        payload = cloud.template(flow_token=flow_token, **template)
        self.correlation.issue(flow_token, session_flow)
        wamid = self.channel.send(to, payload, callback)
        self.correlation.remember(wamid, flow_token)
        self.correlation.sessions.note(flow_token, "template_sent", self.channel.name)
        return wamid
