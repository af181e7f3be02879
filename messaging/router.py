"""Which channel carries a follow-up: Cloud API first, WASenderApi where it must.

``FOLLOWUP_CHANNEL``:
- ``cloud``: the Cloud API only; a refusal is recorded and nothing else is tried.
- ``hybrid``: the Cloud API, and WASenderApi when the Cloud API cannot reach the user (outside the
  window with no template, 131047, 131026 and other permanent errors) or has failed for good.
- ``wasender``: WASenderApi only.
- ``console``: development or staging; messages land in the console outbox.
- ``none``: an endpoint-only deployment; every message is refused (and recorded as such).
Retryable errors are raised as they are, so RQ retries the job with backoff.
"""
from __future__ import annotations

import logging

from flows.contacts import Contacts, mask
from messaging.graph import RETRYABLE, GraphError
from messaging.outbound import Delivery, Outbound
from messaging.wasender import WASenderError

log = logging.getLogger("flowgate.router")
MODES = ("cloud", "hybrid", "wasender", "console", "none")


class Refused(Exception):
    """No channel may or can carry this message; ``reason`` is recorded on the session."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Router:
    def __init__(self, mode: str, cloud, wasender, console, contacts: Contacts):
        if mode not in MODES:
            raise ValueError(f"FOLLOWUP_CHANNEL must be one of {', '.join(MODES)}")
        self.mode = mode
        self.cloud, self.wasender, self.console = cloud, wasender, console
        self.contacts = contacts

    def deliver(self, out: Outbound, final_attempt: bool = False, via: str | None = None,
                opt_out_notice: bool = False) -> Delivery:
        """Send through the right channel. ``final_attempt``: the job has no retries left, so in
        hybrid mode a retryable Cloud failure goes to WASender instead of being raised. ``via``:
        answer on the channel the user wrote on. ``opt_out_notice``: the one confirmation of a STOP,
        the only message an opted-out user receives."""
        if self.mode == "none":
            raise Refused("FOLLOWUP_CHANNEL=none: this deployment sends nothing")
        if self.contacts.opted_out(out.to) and not opt_out_notice:
            raise Refused("user opted out")
        in_window = self.contacts.in_window(out.to)
        if self.mode == "console":
            return self.console.send(out, in_window)
        if self.mode == "wasender" or via == "wasender":
            return self._wasender(out, in_window)
        try:
            return self.cloud.send(out, in_window)
        except GraphError as exc:
            if self.mode == "cloud" or (exc.kind == RETRYABLE and not final_attempt):
                if exc.kind == RETRYABLE:
                    raise
                raise Refused(f"cloud {exc.kind} (code {exc.code})") from None
            log.info("to=%s cloud refused (%s, code %s): falling back to WASender", mask(out.to),
                     exc.kind, exc.code)
            return self._wasender(out, in_window, cloud_error=exc)

    def _wasender(self, out: Outbound, in_window: bool, cloud_error: GraphError | None = None) -> Delivery:
        if not self.wasender.configured:
            raise Refused("WASender not configured" + (f" after cloud code {cloud_error.code}" if cloud_error else ""))
        try:
            return self.wasender.send(out, in_window)
        except WASenderError as exc:
            if exc.kind in ("rate_limited", "retryable"):
                raise
            raise Refused(f"wasender {exc.kind}: {exc.message}") from None
