"""Files we send by link (a PDF receipt): kept in Redis for a while, served at a signed URL.

The Cloud API and WASenderApi both fetch a document from a public ``link`` when they send it, so
the app serves it itself: ``<PUBLIC_BASE_URL>/media/<id>?exp=<unix time>&sig=<hex>``. The id is
derived from the submission with a secret (unguessable, and the same on every retry of the job);
the signature covers id and expiry, so a link can neither be forged nor extended; the content
expires in Redis at the same moment.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

ID_PATTERN = re.compile(r"^[a-f0-9]{32}$")
OK, BAD, EXPIRED = "ok", "bad", "expired"


class MediaStore:
    def __init__(self, redis, secret: str, base_url: str | None, ttl: int):
        self.redis = redis
        self._key = hashlib.sha256(("flowgate-media\0" + secret).encode()).digest()
        self.base_url = (base_url or "").rstrip("/")
        self.ttl = ttl

    @staticmethod
    def key(media_id: str) -> str:
        return f"fg:media:{media_id}"

    def media_id(self, name: str) -> str:
        return hmac.new(self._key, f"id\0{name}".encode(), hashlib.sha256).hexdigest()[:32]

    def signature(self, media_id: str, expires: int) -> str:
        return hmac.new(self._key, f"url\0{media_id}\0{expires}".encode(), hashlib.sha256).hexdigest()

    def put(self, name: str, content: bytes, content_type: str, file_name: str,
            now: float | None = None) -> str:
        """Store ``content`` under an id derived from ``name``; returns its signed public URL."""
        if not self.base_url:
            raise ValueError("PUBLIC_BASE_URL is not set: no public URL to send a file by link")
        media_id = self.media_id(name)
        expires = int((time.time() if now is None else now) + self.ttl)
        meta = json.dumps({"type": content_type, "file_name": file_name})
        pipe = self.redis.pipeline()
        pipe.hset(self.key(media_id), mapping={"meta": meta, "content": content})
        pipe.expireat(self.key(media_id), expires)
        pipe.execute()
        return f"{self.base_url}/media/{media_id}?exp={expires}&sig={self.signature(media_id, expires)}"

    def check(self, media_id: str, expires: int, sig: str, now: float | None = None) -> str:
        if not hmac.compare_digest(self.signature(media_id, expires).encode(), sig.encode()):
            return BAD
        return EXPIRED if (time.time() if now is None else now) > expires else OK

    def get(self, media_id: str) -> tuple[bytes, str, str] | None:
        """(content, content type, file name), or None once expired."""
        raw = self.redis.hmget(self.key(media_id), "meta", "content")
        if not raw[0] or raw[1] is None:
            return None
        meta = json.loads(raw[0])
        return raw[1], meta["type"], meta["file_name"]
