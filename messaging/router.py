"""The one place that decides which channel carries a message, and the one way out for every message.

Every message to a user — the first Flow (``flask flows send``, the send API), a recovery step, a
confirmation, a receipt, a reply in a conversation, the contact-info request — is an ``Outbound``
handed to ``Router.deliver``. It checks that the user may be messaged (``_may_message``: the
opt-out), picks the channel by ``FOLLOWUP_CHANNEL``, and hands the message over in ``_send``,
the only line that calls a channel. ``FOLLOWUP_CHANNEL``:

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
    """No channel may or can carry this message; ``reason`` is recorded on the session. ``cause``:
    the channel's own error when a channel refused it (its ``kind`` and ``code``)."""

    def __init__(self, reason: str, cause: GraphError | WASenderError | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause

    @property
    def kind(self) -> str | None:
        return getattr(self.cause, "kind", None)

    @property
    def code(self) -> int | None:
        return getattr(self.cause, "code", None)

    @property
    def unreachable(self) -> bool:
        """The user has no phone number and the Cloud API cannot reach them: handed over already."""
        return self.reason.startswith(UNREACHABLE)


class Router:
    """``cloud``, ``wasender`` and ``console`` are the channels (``messaging.channels``): each
    renders an ``Outbound`` in its API's shape and sends it."""

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

    @property
    def sends_nothing(self) -> bool:
        return self.mode == "none"

    def deliver(self, out: Outbound, final_attempt: bool = False, via: str | None = None,
                opt_out_notice: bool = False, in_window: bool | None = None) -> Delivery:
        """Send through the right channel. ``final_attempt``: the job has no retries left, so in
        hybrid mode a retryable Cloud failure goes to WASender instead of being raised. ``via``:
        answer on the channel the user wrote on. ``opt_out_notice``: the one confirmation of a STOP,
        the only message an opted-out user receives. ``in_window``: True when the message answers
        one being handled now (a completion's confirmation: that message opened the window, and
        Meta answers 131047 if it has closed since); by default the contact record says."""
        if self.sends_nothing:
            raise Refused("FOLLOWUP_CHANNEL=none: this deployment sends nothing")
        out.to = user = self.contacts.resolve(out.to, enrich=True)  # the person's current numbers
        self._may_message(user, opt_out_notice)
        in_window = self.contacts.in_window(user) if in_window is None else in_window
        if self.mode == "console":
            return self._send(self.console, out, in_window)
        if self.mode == "wasender" or via == "wasender":
            if not user.phone:
                self._unreachable(user, "WASender needs one", sender_id=out.sender_id, token=out.flow_token)
            return self._wasender(out, in_window)
        try:
            return self._send(self.cloud, out, in_window)
        except GraphError as exc:
            if exc.kind == RETRYABLE and not final_attempt:
                raise
            if not user.phone:  # WASender cannot help: say so, and ask for the number
                self._unreachable(user, f"cloud {exc.kind} (code {exc.code})", code=exc.code,
                                 sender_id=out.sender_id, token=out.flow_token, error=exc)
            if self.mode == "cloud":
                if exc.kind == RETRYABLE:
                    raise
                raise Refused(f"cloud {exc.kind} (code {exc.code})", exc) from None
            log.info("to=%s cloud refused (%s, code %s): falling back to WASender", masked(user),
                     exc.kind, exc.code)
            return self._wasender(out, in_window, cloud_error=exc)

    def _may_message(self, user: User, opt_out_notice: bool) -> None:
        """Whether this user may get a message at all, whatever the channel: checked once per
        ``deliver``, before any channel is chosen (the contact-info request included)."""
        if self.contacts.opted_out(user) and not opt_out_notice:
            raise Refused("user opted out")

    def _send(self, channel, out: Outbound, in_window: bool) -> Delivery:
        """The only place a message is handed to a channel (the user's consent to it was checked
        by ``_may_message`` at the top of ``deliver``)."""
        return channel.send(out, in_window)

    def _unreachable(self, user: User, cause: str, code: int | None = None, sender_id: str | None = None,
                     token: str | None = None, error=None):
        """A user with no known phone number whom the Cloud API cannot reach: ask for the number
        (CONTACT_INFO_TEMPLATE, once per person), put the case on the fallback list, refuse."""
        asked = self._ask_for_phone(user, sender_id)
        detail = f"{cause}; contact info request {asked}"
        if code == BSUID_NOT_SUPPORTED:
            detail = f"BSUID recipients not supported for this message; {detail}"
        fallback.hand_over(self.contacts.redis, None, reason="unreachable_no_phone", to=user, token=token,
                           code=code, detail=detail)
        raise Refused(f"{UNREACHABLE} ({detail})", error)

    def _ask_for_phone(self, user: User, sender_id: str | None) -> str:
        if self.contact_info is None:
            return "not configured (CONTACT_INFO_TEMPLATE)"
        key = CONTACT_INFO_KEY.format(user.key or user.bsuid)
        # A template: it goes out inside or outside the window.
        out = Outbound(to=user, text="", key=key, contact_request=self.contact_info, sender_id=sender_id)
        try:  # an answered failure is not recorded: the next message this user cannot get tries again
            outcome = self.effects.once(
                key, lambda: self._send(self.cloud, out, True).to_dict(),
                safe_to_retry=lambda exc: isinstance(exc, GraphError) and exc.kind != RETRYABLE,
                when_lost="skip")  # at most once: a user-visible message
        except GraphError as exc:
            return f"failed ({exc.kind}, code {exc.code})"
        return "sent" if outcome.performed_now else ("unknown (an earlier attempt died mid-send)"
                                                     if outcome.ambiguous else "already sent")

    def _wasender(self, out: Outbound, in_window: bool, cloud_error: GraphError | None = None) -> Delivery:
        if not self.wasender.configured:
            after = f" after cloud code {cloud_error.code}" if cloud_error else ""
            raise Refused(f"WASender not configured{after}", cloud_error)
        try:
            return self._send(self.wasender, out, in_window)
        except WASenderError as exc:
            if exc.kind in ("rate_limited", "retryable"):
                raise
            raise Refused(f"wasender {exc.kind}: {exc.message}", exc) from None
