"""Who a WhatsApp user is: a phone number, a business-scoped user ID (BSUID), or both.

WhatsApp usernames (H2 2026) let a user hide their phone number: every ``messages`` webhook then
carries their BSUID (``US.13491208655302741918``) and may carry no phone at all (docs/meta-facts.md,
"Business-scoped user IDs", for every field name below and its source). ``User`` is the one value
the rest of the code passes around; ``stores.contacts.Contacts`` resolves it to one contact record
(the canonical key) so per-user state follows the person, whichever identifier a webhook carries.

Plain Python: no Redis, no HTTP. The extractors take what Meta sent and never raise: a value of
the wrong type is treated as absent.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace


# ISO 3166 alpha-2, a period, up to 128 alphanumerics; a parent BSUID may carry an "ENT." part.
BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_SHORT = 200  # no identifier of ours is longer; anything longer is not one


@dataclass(frozen=True)
class User:
    phone: str | None = None  # wa_id: E.164 digits, no "+"
    bsuid: str | None = None  # user_id: scoped to the business portfolio
    parent_bsuid: str | None = None  # parent_user_id: across linked portfolios (when enabled)
    username: str | None = None  # contacts[].profile.username: display only, never a key
    key: str | None = None  # the canonical contact key, once resolved (stores.contacts)

    @property
    def known(self) -> bool:
        return bool(self.phone or self.bsuid or self.parent_bsuid)

    def address(self) -> dict:
        """The Cloud API's recipient fields: ``to`` when a phone is known, else ``recipient``
        (the BSUID, or the parent BSUID). Meta lets a send carry both (``to`` wins); one is enough."""
        if self.phone:
            return {"to": self.phone}
        if self.bsuid or self.parent_bsuid:
            return {"recipient": self.bsuid or self.parent_bsuid}
        raise ValueError("no phone number and no BSUID to send to")

    def to_dict(self) -> dict:
        """Plain data for a job argument or a record (``None`` fields left out)."""
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_dict(cls, data) -> User | None:
        if not isinstance(data, dict):
            return None
        user = cls(**{k: _text(data.get(k)) for k in ("phone", "bsuid", "parent_bsuid", "username", "key")})
        return user if user.known else None

    def merged(self, other: User | None) -> User:
        """Fields this value lacks, taken from ``other`` (what a contact record knows)."""
        if other is None:
            return self
        return replace(self, **{k: getattr(other, k) for k in ("phone", "bsuid", "parent_bsuid", "username")
                                if not getattr(self, k) and getattr(other, k)})

    def __str__(self) -> str:  # a log line may carry this, never more
        return masked(self)


def normalise_phone(value: str) -> str:
    """wa_id form: digits only (Cloud API webhooks send it that way; WASender sends '+' or a JID)."""
    return re.sub(r"\D", "", str(value).split("@", 1)[0])


def coerce(who) -> User:
    """A ``User`` from what callers hold: a ``User``, a job's dict, a BSUID or a phone string."""
    if isinstance(who, User):
        return who
    if isinstance(who, dict):
        user = User.from_dict(who)
        if user is None:
            raise ValueError("no phone number and no BSUID")
        return user
    if isinstance(who, str) and BSUID.match(who.strip()):
        return User(bsuid=who.strip())
    if isinstance(who, str) and normalise_phone(who):
        return User(phone=normalise_phone(who))
    raise ValueError("not a phone number or a BSUID")


def parse_address(value: str) -> User:
    """What the send API and CLI accept: an international number or a BSUID (ValueError else)."""
    text = (value or "").strip()
    if BSUID.match(text):
        return User(bsuid=text)
    digits = normalise_phone(text)
    if not 6 <= len(digits) <= 15 or re.search(r"[A-Za-z]", text):
        raise ValueError("to must be an international number (E.164 digits) or a BSUID like US.1349…")
    return User(phone=digits)


# --- what a log line, the dashboard or a timeline may show ------------------------------------


def mask_phone(phone: str | None) -> str:
    """``+1 650 555 1234`` → ``•••1234``: the one way a phone number is masked, in a log line, on
    the dashboard, in a dead letter. Enough to tell two users apart, not to call one."""
    digits = normalise_phone(phone or "")
    if not digits:
        return "-"
    return f"•••{digits[-4:]}" if len(digits) > 4 else "•••"


_PHONE_RUN = re.compile(r"\+?\d[\d\s-]{5,}\d")


def mask_text(text: str) -> str:
    """A free text (a reason, an event) with any run that looks like a phone number masked."""
    return _PHONE_RUN.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_bsuid(bsuid: str | None) -> str:
    """``US.13491208655302741918`` → ``US.…1918``: the country and enough to tell two apart."""
    if not bsuid:
        return "-"
    country, _, rest = bsuid.partition(".")
    return f"{country}.…{rest[-4:]}" if len(rest) > 4 else f"{country}.…"


def mask_username(username: str | None) -> str:
    """``@pablomorales`` → ``@•••les``: shown like a masked phone, never in a log line."""
    name = (username or "").lstrip("@")
    return f"@•••{name[-3:]}" if len(name) > 3 else ("@•••" if name else "")


def masked(user: User | None) -> str:
    """For logs: the masked phone, else the masked BSUID. Never the username."""
    if user is None:
        return "-"
    return mask_phone(user.phone) if user.phone else mask_bsuid(user.bsuid or user.parent_bsuid)


def shown(user: User | None) -> str:
    """For the dashboard and session timelines: masked phone and masked username when known."""
    if user is None:
        return ""
    parts = [mask_phone(user.phone) if user.phone and len(user.phone) > 4 else ""]
    if user.username:
        parts.append(mask_username(user.username))
    if not any(parts):
        parts.append(mask_bsuid(user.bsuid or user.parent_bsuid))
    return " ".join(p for p in parts if p)


# --- sessions ---------------------------------------------------------------------------------


def of_session(session: dict | None) -> User | None:
    """The user a Flow session was sent to or completed by (``phone`` / ``bsuid`` fields)."""
    if not session:
        return None
    user = User(phone=_text(session.get("phone")), bsuid=_text(session.get("bsuid")),
                username=_text(session.get("username")))
    return user if user.known else None


def session_fields(user: User | None) -> dict:
    """What a session records of its user (``of_session`` reads it back)."""
    if user is None:
        return {}
    return {k: v for k, v in (("phone", user.phone), ("bsuid", user.bsuid or user.parent_bsuid),
                              ("username", user.username)) if v}


# --- webhook extraction (docs/meta-facts.md, "Business-scoped user IDs") -----------------------


def from_message(value: dict, message: dict) -> User | None:
    """The sender of one ``messages[]`` entry: ``from`` / ``from_user_id`` /
    ``from_parent_user_id`` on the message, completed from the matching ``contacts[]`` entry
    (``wa_id``, ``user_id``, ``parent_user_id``, ``profile.username``). None: no sender at all."""
    if not isinstance(message, dict):
        return None
    return _with_contact(value, _text(message.get("from")), _text(message.get("from_user_id")),
                         _text(message.get("from_parent_user_id")))


def from_status(value: dict, status: dict) -> User | None:
    """The recipient of one ``statuses[]`` entry: ``recipient_id`` (a phone, unless the status is
    a group's), ``recipient_user_id``, the parent as ``parent_recipient_user_id`` (Meta's page) or
    ``recipient_parent_user_id`` (its Calling section's spelling). A ``failed`` status has no
    ``contacts``; ``recipient_user_id`` only when we sent to the BSUID."""
    if not isinstance(status, dict):
        return None
    phone = None if status.get("recipient_type") == "group" else _text(status.get("recipient_id"))
    return _with_contact(value, phone, _text(status.get("recipient_user_id")),
                         _text(status.get("parent_recipient_user_id")
                               or status.get("recipient_parent_user_id")))


def of_job(message: dict, extra: dict | None) -> User:
    """Who sent a webhook message, as its job gets it: the identity the webhook parser attached
    (``extra["user"]``), or, for a job queued by an earlier version, the message's ``from``."""
    user = User.from_dict((extra or {}).get("user"))
    return user if user is not None else coerce(message["from"])


def identity_changes(value: dict, message: dict | None = None) -> list[tuple[User, User]]:
    """(before, after) pairs for one person whose identifiers changed.

    - a ``system`` message (``user_changed_number`` or ``user_changed_user_id``): before = the
      message's ``from`` and ``system.previous_user_id`` / ``previous_parent_user_id`` (added
      August 2026); after = ``system.wa_id`` / ``user_id`` / ``parent_user_id``;
    - a ``user_id_update`` change (March 2026 shape): ``user_id_update[]`` entries with
      ``wa_id`` and ``user_id`` / ``parent_user_id`` as ``{"previous", "current"}``.
    """
    pairs = []
    if message is not None:
        system = message.get("system") if isinstance(message, dict) else None
        if isinstance(system, dict):
            before = User(phone=_phone(message.get("from")), bsuid=_text(system.get("previous_user_id")),
                          parent_bsuid=_text(system.get("previous_parent_user_id")))
            after = User(phone=_phone(system.get("wa_id") or system.get("new_wa_id")),
                         bsuid=_text(system.get("user_id")), parent_bsuid=_text(system.get("parent_user_id")))
            pairs.append((before, after))
        return [(b, a) for b, a in pairs if b.known and a.known]
    updates = value.get("user_id_update") if isinstance(value, dict) else None
    for entry in updates if isinstance(updates, list) else []:
        if not isinstance(entry, dict):
            continue
        ids = entry.get("user_id") if isinstance(entry.get("user_id"), dict) else {}
        parents = entry.get("parent_user_id") if isinstance(entry.get("parent_user_id"), dict) else {}
        phone = _phone(entry.get("wa_id"))
        pairs.append((User(phone=phone, bsuid=_text(ids.get("previous")),
                           parent_bsuid=_text(parents.get("previous"))),
                      User(phone=phone, bsuid=_text(ids.get("current")),
                           parent_bsuid=_text(parents.get("current")))))
    return [(b, a) for b, a in pairs if b.known and a.known]


def shared_phone(message: dict) -> str | None:
    """The user's own number from a ``contacts`` message sent by tapping a REQUEST_CONTACT_INFO
    button (``origin`` ``contact_request``): a contact card they forwarded (``origin`` ``other``)
    is someone else's and is not taken."""
    if not isinstance(message, dict) or message.get("type") != "contacts":
        return None
    if not str(message.get("origin") or "").startswith("contact_request"):
        return None
    cards = message.get("contacts")
    card = cards[0] if isinstance(cards, list) and cards and isinstance(cards[0], dict) else {}
    phones = card.get("phones")
    first = phones[0] if isinstance(phones, list) and phones and isinstance(phones[0], dict) else {}
    return _phone(first.get("wa_id") or first.get("phone"))


def _with_contact(value, phone, bsuid, parent) -> User | None:
    contact = _contact(value, phone, bsuid)
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    user = User(phone=_phone(phone or contact.get("wa_id")),
                bsuid=bsuid or _text(contact.get("user_id")),
                parent_bsuid=parent or _text(contact.get("parent_user_id")),
                username=_text(profile.get("username")))
    return user if user.known else None


def _contact(value, phone, bsuid) -> dict:
    """The ``contacts[]`` entry for this sender or recipient: the one naming the same phone or
    BSUID, or the only one when the event names neither."""
    contacts = value.get("contacts") if isinstance(value, dict) else None
    contacts = [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (bsuid and contact.get("user_id") == bsuid):
            return contact
    return contacts[0] if len(contacts) == 1 and not (phone and bsuid) else {}


def _text(value) -> str | None:
    # Identifiers Meta sends are taken as they come (its format may grow); only our own inputs
    # (the send API, the CLI) are held to the BSUID pattern.
    return value.strip() if isinstance(value, str) and value.strip() and len(value) <= _SHORT else None


def _phone(value) -> str | None:
    text = _text(value)
    digits = normalise_phone(text) if text else ""
    return digits if 4 <= len(digits) <= 20 else None
