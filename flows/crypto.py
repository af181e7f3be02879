"""The Flows encryption scheme, both ways (protocol doc, section 1).

Request: the AES-128 key is RSA-OAEP (SHA-256, MGF1-SHA-256) wrapped; the body is AES-GCM with a
16-byte IV and the tag appended. Reply: same AES key, IV with every bit inverted, base64 text.
The server side (``decrypt_request``/``seal``) and the WhatsApp side used by the simulator
(``encrypt_request``/``decrypt_reply``) live together so they can never drift apart.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flows.keys import KeyRing

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
IV_BYTES = 16
TAG_BYTES = 16


class DecryptionError(Exception):
    """Answered with 421. ``step`` names what failed, for the log; nothing secret is kept."""

    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


@dataclass(frozen=True)
class Envelope:
    """A decrypted request: its plaintext and what the reply must be encrypted with."""

    payload: object
    aes_key: bytes
    iv: bytes
    key_used: str  # "current" or "previous": rotations are visible in the log


def _b64(value: str, step: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(step) from None


def flip_iv(iv: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in iv)


def decrypt_request(body: dict, ring: KeyRing) -> Envelope:
    """Unwrap with the current key, then the previous one; any failure raises DecryptionError."""
    wrapped = _b64(body["encrypted_aes_key"], "base64 of encrypted_aes_key")
    blob = _b64(body["encrypted_flow_data"], "base64 of encrypted_flow_data")
    iv = _b64(body["initial_vector"], "base64 of initial_vector")
    if len(iv) != IV_BYTES:
        raise DecryptionError("initial_vector is not 16 bytes")
    if len(blob) < TAG_BYTES:
        raise DecryptionError("encrypted_flow_data shorter than the GCM tag")
    aes_key = key_used = None
    for name, key in ring.candidates():
        try:
            aes_key = key.decrypt(wrapped, OAEP)
            key_used = name
            break
        except ValueError:
            continue
    if aes_key is None:
        raise DecryptionError("RSA-OAEP unwrap of the AES key (no configured key fits)")
    if len(aes_key) != 16:
        raise DecryptionError("unwrapped AES key is not 128 bits")
    try:
        plaintext = AESGCM(aes_key).decrypt(iv, blob, None)
    except InvalidTag:
        raise DecryptionError("AES-GCM tag check") from None
    try:
        payload = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecryptionError("plaintext is not UTF-8 JSON") from None
    return Envelope(payload=payload, aes_key=aes_key, iv=iv, key_used=key_used)


def json_bytes(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal(plaintext: bytes, aes_key: bytes, iv: bytes) -> str:
    return base64.b64encode(AESGCM(aes_key).encrypt(iv, plaintext, None)).decode("ascii")


# --- the WhatsApp side: what the simulator and the tests send ---------------------------------


@dataclass(frozen=True)
class SealedRequest:
    body: dict
    aes_key: bytes
    iv: bytes


def encrypt_request(payload: dict, public_key: rsa.RSAPublicKey) -> SealedRequest:
    aes_key, iv = os.urandom(16), os.urandom(IV_BYTES)
    body = {
        "encrypted_flow_data": seal(json_bytes(payload), aes_key, iv),
        "encrypted_aes_key": base64.b64encode(public_key.encrypt(aes_key, OAEP)).decode("ascii"),
        "initial_vector": base64.b64encode(iv).decode("ascii"),
    }
    return SealedRequest(body=body, aes_key=aes_key, iv=iv)


def decrypt_reply(text: str, aes_key: bytes, iv: bytes) -> dict:
    blob = base64.b64decode(text, validate=True)
    return json.loads(AESGCM(aes_key).decrypt(flip_iv(iv), blob, None).decode("utf-8"))
