"""The business public key registered with Meta for a phone number (protocol doc 1.4).

``POST /<PHONE_NUMBER_ID>/whatsapp_business_encryption`` with the form field
``business_public_key`` uploads it (Meta signs it on upload); ``GET`` reads back the key and its
``business_public_key_signature_status`` (VALID | MISMATCH), wrapped in ``{"data": [...]}``.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def registered(graph: GraphClient, phone_number_id: str) -> Registered:
    body = graph.request("GET", _path(phone_number_id))
    rows = body.get("data") if isinstance(body.get("data"), list) else [body]
    row = next((r for r in rows if isinstance(r, dict) and r.get("business_public_key")), None)
    if row is None:
        return Registered(None, None)
    return Registered(row["business_public_key"], row.get("business_public_key_signature_status"))
