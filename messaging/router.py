"""Which channel carries a follow-up: Cloud API first, WASenderApi where it must.

``FOLLOWUP_CHANNEL``:
- ``cloud``: the Cloud API only; a refusal is recorded and nothing else is tried.
- ``hybrid``: the Cloud API, and WASenderApi when the Cloud API cannot reach the user (outside the
  window with no template, 131047, 131026 and other permanent errors) or has failed for good.
- ``wasender``: WASenderApi only.
- ``console``: development or staging; messages land in the console outbox.
- ``none``: an endpoint-only deployment; every message is refused (and recorded as such).
Retryable errors are raised as they are, so RQ retries the job with backoff.

WASenderApi is phone-only: a user known only by their business-scoped user ID (a WhatsApp
username user) never goes there. When the Cloud API cannot reach such a user either, they are
recorded "unreachable without a phone number" (refusal and fallback list) and, with
CONTACT_INFO_TEMPLATE set, sent that template once, so they can share their number in one tap.
"""
from __future__ import annotations

import logging

from stores.contacts import Contacts
from flows.identity import User, masked
from messaging import fallback
from messaging.graph import BSUID_NOT_SUPPORTED, RETRYABLE, GraphError
from messaging.outbound import Delivery, Outbound
from messaging.wasender import WASenderError

log = logging.getLogger("flowgate.router")
MODES = ("cloud", "hybrid", "wasender", "console", "none")
UNREACHABLE = "unreachable without a phone number"
CONTACT_INFO_KEY = "contact-info-{}"  # one request per person (its once-record lasts 30 days)


class Refused(Exception):
    """No channel may or can carry this message; ``reason`` is recorded on the session."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Router:
    def __init__(self, mode: str, cloud, wasender, console, contacts: Contacts,
                 contact_info: tuple[str, str] | None = None):
        if mode not in MODES:
            raise ValueError(f"FOLLOWUP_CHANNEL must be one of {', '.join(MODES)}")
        self.mode = mode
        self.cloud, self.wasender, self.console = cloud, wasender, console
        self.contacts = contacts
        # The one exactly-once mechanism (workers/effects.py: Effects), attached by app.start: it
        # lives with the jobs, and messaging never imports upward.
        self.effects = None
        self.contact_info = contact_info  # (template name, language): CONTACT_INFO_TEMPLATE

    def deliver(self, out: Outbound, final_attempt: bool = False, via: str | None = None,
                opt_out_notice: bool = False) -> Delivery:
        """Send through the right channel. ``final_attempt``: the job has no retries left, so in
        hybrid mode a retryable Cloud failure goes to WASender instead of being raised. ``via``:
        answer on the channel the user wrote on. ``opt_out_notice``: the one confirmation of a STOP,
        the only message an opted-out user receives."""
        if self.mode == "none":
            raise Refused("FOLLOWUP_CHANNEL=none: this deployment sends nothing")
        out.to = user = self.contacts.resolve(out.to, enrich=True)  # the person's current numbers
        if self.contacts.opted_out(user) and not opt_out_notice:
            raise Refused("user opted out")
        in_window = self.contacts.in_window(user)
        if self.mode == "console":
            return self.console.send(out, in_window)
        if self.mode == "wasender" or via == "wasender":
            if not user.phone:
                self.unreachable(user, "WASender needs one", sender_id=out.sender_id, token=out.flow_token)
            return self._wasender(out, in_window)
        try:
            return self.cloud.send(out, in_window)
        except GraphError as exc:
            if exc.kind == RETRYABLE and not final_attempt:
                raise
            if not user.phone:  # WASender cannot help: say so, and ask for the number
                self.unreachable(user, f"cloud {exc.kind} (code {exc.code})", code=exc.code,
                                 sender_id=out.sender_id, token=out.flow_token)
            if self.mode == "cloud":
                if exc.kind == RETRYABLE:
                    raise
                raise Refused(f"cloud {exc.kind} (code {exc.code})") from None
            log.info("to=%s cloud refused (%s, code %s): falling back to WASender", masked(user),
                     exc.kind, exc.code)
            return self._wasender(out, in_window, cloud_error=exc)

    def unreachable(self, user: User, cause: str, code: int | None = None, sender_id: str | None = None,
                    token: str | None = None, message_id: str | None = None):
        """A user with no known phone number whom the Cloud API cannot reach: ask for the number
        (CONTACT_INFO_TEMPLATE, once per person), put the case on the fallback list, refuse."""
        asked = self._ask_for_phone(user, sender_id)
        detail = f"{cause}; contact info request {asked}"
        if code == BSUID_NOT_SUPPORTED:
            detail = f"BSUID recipients not supported for this message; {detail}"
        fallback.hand_over(self.contacts.redis, None, reason="unreachable_no_phone", to=user, token=token,
                           message_id=message_id, code=code, detail=detail)
        raise Refused(f"{UNREACHABLE} ({detail})")

    def _ask_for_phone(self, user: User, sender_id: str | None) -> str:
        if self.contact_info is None:
            return "not configured (CONTACT_INFO_TEMPLATE)"
        key = CONTACT_INFO_KEY.format(user.key or user.bsuid)

        try:  # an answered failure is not recorded: the next message this user cannot get tries again
            outcome = self.effects.once(key, lambda: {
                "wamid": self.cloud.ask_for_phone(user, self.contact_info, key, sender_id)},
                safe_to_retry=lambda exc: isinstance(exc, GraphError) and exc.kind != RETRYABLE,
                when_lost="skip")  # at most once: a user-visible message
        except GraphError as exc:
            return f"failed ({exc.kind}, code {exc.code})"
        return "sent" if outcome.performed_now else ("unknown (an earlier attempt died mid-send)"
                                                     if outcome.ambiguous else "already sent")

    def _wasender(self, out: Outbound, in_window: bool, cloud_error: GraphError | None = None) -> Delivery:
        if not self.wasender.configured:
            raise Refused("WASender not configured"
                          + (f" after cloud code {cloud_error.code}" if cloud_error else ""))
        try:
            return self.wasender.send(out, in_window)
        except WASenderError as exc:
            if exc.kind in ("rate_limited", "retryable"):
                raise
            raise Refused(f"wasender {exc.kind}: {exc.message}") from None
