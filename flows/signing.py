"""X-Hub-Signature-256: HMAC-SHA256 of the raw body with the Meta app secret (protocol doc 4).

Both the current and the previous secret are accepted so a rotation needs no downtime.
"""
from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Verifier:
    def __init__(self, *secrets: str | None):
        self._secrets = [s.encode() for s in secrets if s]

    @property
    def enabled(self) -> bool:
        return bool(self._secrets)

    def check(self, header: str | None, body: bytes) -> bool:
        """Constant-time against every secret; a missing or malformed header is simply False."""
        if not header or not header.startswith("sha256="):
            return False
        given = header[len("sha256="):].strip().lower().encode()
        ok = False
        for secret in self._secrets:
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            ok |= hmac.compare_digest(expected, given)
        return ok
