"""The business public key registered with Meta for a phone number (protocol doc 1.4).

``POST /<PHONE_NUMBER_ID>/whatsapp_business_encryption`` with the form field
``business_public_key`` uploads it (Meta signs it on upload); ``GET`` reads back the key and its
``business_public_key_signature_status`` (VALID | MISMATCH), wrapped in ``{"data": [...]}``.
Meta's reference shows a VALID key answered with the status alone, so both fields are asked for
by name (docs/meta-facts.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from flows import keys
from messaging.graph import GraphClient


@dataclass(frozen=True)
class Registered:
    public_key: str | None  # PEM, None when no key is registered
    signature_status: str | None


def _path(phone_number_id: str) -> str:
    return f"{phone_number_id}/whatsapp_business_encryption"


def upload(graph: GraphClient, phone_number_id: str, public_pem: str) -> dict:
    """Raises messaging.graph.GraphError; the docs send the PEM form-encoded."""
    return graph.request("POST", _path(phone_number_id), data={"business_public_key": public_pem})


FIELDS = "business_public_key,business_public_key_signature_status"


def registered(graph: GraphClient, phone_number_id: str) -> Registered:
    body = graph.request("GET", _path(phone_number_id), params={"fields": FIELDS})
    rows = body.get("data") if isinstance(body.get("data"), list) else [body]
    rows = [r for r in rows if isinstance(r, dict)]
    row = next((r for r in rows if str(r.get("business_public_key") or "").strip()), None)
    if row is None:
        status = next((r.get("business_public_key_signature_status") for r in rows), None)
        return Registered(None, status)
    return Registered(row["business_public_key"], row.get("business_public_key_signature_status"))


def which_local(reg: Registered, ring) -> str | None:
    """"current" or "previous": the key of ``ring`` (flows.keys.KeyRing) that Meta encrypts for,
    or None when Meta holds a key this app cannot decrypt with. Raises KeyConfigError/ValueError
    when Meta's key is not a PEM RSA key."""
    registered_fp = keys.fingerprint(reg.public_key)
    return next((name for name, key in ring.candidates() if keys.fingerprint(key) == registered_fp), None)
