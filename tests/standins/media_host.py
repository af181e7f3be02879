"""A loopback web server holding the business's own images (RECEIPT_IMAGE_URL points here)."""
from __future__ import annotations

import base64

from flask import Response, request

from standins import StandIn

# A valid 1×1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


class MediaHostStandIn(StandIn):
    huge_bytes = 6 * 1024 * 1024  # over the Cloud API's 5 MB image limit

    def routes(self) -> None:
        @self.app.get("/card.png")
        def png():
            self.record(request)
            return Response(PNG, mimetype="image/png")

        @self.app.get("/card.gif")  # a type the Cloud API does not take for images
        def gif():
            self.record(request)
            return Response(GIF, mimetype="image/gif")

        @self.app.get("/huge.png")
        def huge():
            self.record(request)
            chunk = PNG + b"\0" * (64 * 1024 - len(PNG))
            return Response((chunk for _ in range(self.huge_bytes // len(chunk) + 1)), mimetype="image/png")

    def link(self, name: str) -> str:
        return f"{self.url}/{name}"
