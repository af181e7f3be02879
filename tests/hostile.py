"""What the hostile-input tests share: requests sealed the way WhatsApp seals them (any plaintext,
lone surrogates included), each shipped flow's own fields read from its Flow JSON, and a watch on
the server's log, which sees the handler errors that the encrypted 200 reply hides."""
from __future__ import annotations

import base64
import json
import logging
import os
from datetime import date, timedelta

from hypothesis import strategies as st

from flows import crypto

# Lone surrogates: valid as JSON escapes (\ud800), impossible to encode as UTF-8. The last is half
# of an emoji's surrogate pair.
LONE_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\ud83d")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=20,
)
unencodable = st.builds(lambda a, s, b: a + s + b, st.text(max_size=6), st.sampled_from(LONE_SURROGATES),
                        st.text(max_size=6))
# Every JSON type, falsy and truthy: what "not the expected type" means for one field.
WRONG_TYPES = ([], {}, 0, False, 5, True, 1.5, ["x"], {"a": 1})
_today = date.today()
# Values the demo flows accept or refuse on purpose (README, "Demo data"), per field name, so the
# fuzz reaches past the first checks: lookups, carried values, holds, SUCCESS.
PLAUSIBLE = {
    "member_id": ["MEM123", "VIP999", "OLD777", "NOPE42", " mem123 "],
    "postal_code": ["10001", "94105", "90210", "SW1A 1AA", "1"],
    "name": ["Ana Silva", "A"], "email": ["ana@example.com", "ana@"], "phone": ["+14155550100", "12"],
    "coupon": ["SAVE10", "FIVEOFF", "SUMMER23", "BIG50", "NOPE", ""],
    "sku": ["MUG-01", "TEE-M", "POSTER", "SOLD-OUT", "NOPE"], "quantity": ["1", "4", "99", "0", "100"],
    "date": [(_today + timedelta(days=n)).isoformat() for n in range(-1, 9)] + ["2026-13-01"],
    "slot": ["09:00", "09:30", "11:30", "14:00", "16:30", "9"],
}


def escaped_json(payload) -> bytes:
    """The payload as a JSON encoder with ensure_ascii writes it: a lone surrogate becomes the six
    characters \\ud800, which is valid JSON (and valid UTF-8) text."""
    return json.dumps(payload).encode("ascii")


def seal_plaintext(plaintext: bytes, public_key) -> tuple[bytes, bytes, bytes]:
    """An endpoint request body around any plaintext: (raw body, AES key, IV)."""
    aes_key, iv = os.urandom(16), os.urandom(crypto.IV_BYTES)
    body = {"encrypted_flow_data": crypto.seal(plaintext, aes_key, iv),
            "encrypted_aes_key": base64.b64encode(public_key.encrypt(aes_key, crypto.OAEP)).decode(),
            "initial_vector": base64.b64encode(iv).decode()}
    return json.dumps(body).encode(), aes_key, iv


def has_unencodable(value) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(has_unencodable(k) or has_unencodable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unencodable(v) for v in value)
    return False


class ServerLog(logging.Handler):
    """Every record of the app's loggers (``flowgate.*``), kept for the test to read: a handler
    that raised is answered 200 with a generic error, so only the log (or the metrics) shows it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.records.append(record)

    def errors(self, since: int = 0) -> list[str]:
        return [self.format(r) for r in self.records[since:] if r.levelno >= logging.ERROR]

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)

    def __enter__(self):
        logger = logging.getLogger("flowgate")
        self._level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        logger = logging.getLogger("flowgate")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def screen_fields(flow) -> dict[str, tuple[list[str], list]]:
    """Screen id → (the keys its data_exchange actions send and its inputs' names, the literal
    values those payloads carry, e.g. ``"step": "day_chosen"``), read from the Flow JSON."""
    out = {}
    for screen in flow.definition.get("screens", []):
        keys, literals = set(), []

        def walk(node):
            if isinstance(node, dict):
                if node.get("name") == "data_exchange" and isinstance(node.get("payload"), dict):
                    for key, value in node["payload"].items():
                        keys.add(key)
                        if not (isinstance(value, str) and value.startswith("${")):
                            literals.append(value)
                elif isinstance(node.get("name"), str) and str(node.get("type", ""))[:1].isupper():
                    keys.add(node["name"])  # an input
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(screen.get("layout", {}))
        out[screen["id"]] = (sorted(keys), literals)
    return out


def field_values(name: str, literals) -> st.SearchStrategy:
    """Anything field ``name`` may carry: every JSON type, unencodable text, and (more often)
    the flow's own literals and values the demo data accepts or refuses."""
    good = st.sampled_from(PLAUSIBLE.get(name, []) + list(literals) or [""])
    return st.one_of(good, good, good, json_values, unencodable)
