"""Messages users send us, on either channel: opt-out, and the record on their latest session."""
from __future__ import annotations

import logging

from flask import current_app

from flows.contacts import mask

log = logging.getLogger("flowgate.conversation")


def wasender_inbound(wa_id: str, text: str, message_id: str) -> str:
    """A message that reached our WASender number. It does not open the Cloud API's window."""
    ext = current_app.extensions
    contacts, sessions = ext["contacts"], ext["sessions"]
    recent = contacts.recent_sessions(wa_id)
    if recent:
        sessions.note(recent[0], "inbound", f"wasender message {message_id[:24]}")
    if contacts.is_stop(text):
        new = contacts.opt_out(wa_id, "wasender")
        log.info("user %s opted out via wasender (%s)", mask(wa_id), "new" if new else "again")
        if recent:
            sessions.note(recent[0], "opted_out", "via wasender")
        return "opted_out"
    return "recorded"
