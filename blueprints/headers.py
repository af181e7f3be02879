"""Security headers on every response the app makes: pages, JSON, errors, the endpoint's text.

The pages (dashboard, login, playground) carry their CSS in ``<style>`` blocks: each carries the
response's nonce (``{{ csp_nonce() }}`` in a template), and no element has a ``style=`` or ``on…=``
attribute, so the policy needs no 'unsafe-inline'. A script is allowed the same way: a static file
of this origin, or an inline block with the nonce. Other responses get the policy without a nonce.

- ``Content-Security-Policy``: nothing but this origin; ``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY`` (older browsers) against clickjacking of the requeue/login forms.
- ``X-Content-Type-Options: nosniff``.
- ``Referrer-Policy: same-origin``: no URL leaves for another site. Not ``no-referrer``: under it
  a browser sends ``Origin: null`` on our own form POSTs, which the CSRF check refuses.
- ``Strict-Transport-Security`` in production only: `make run` serves plain http on loopback.
"""
from __future__ import annotations

import secrets

from flask import g

from config import is_development

POLICY = ("default-src 'none'; script-src 'self'{nonce}; style-src 'self'{nonce}; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of a custom domain are not ours


def csp_nonce() -> str:
    """This response's nonce, made on first use by a template."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app) -> None:
    fixed = [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
             ("Referrer-Policy", "same-origin")]
    if not is_development(app.config):
        fixed.append(("Strict-Transport-Security", HSTS))
    without_nonce = POLICY.format(nonce="")
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def secure(response):
        # About 5 µs a response (the endpoint's hot path included); set() replaces a view's own.
        headers = response.headers
        for name, value in fixed:
            headers.set(name, value)
        nonce = g.get("csp_nonce")
        headers.set("Content-Security-Policy",
                    without_nonce if nonce is None else POLICY.format(nonce=f" 'nonce-{nonce}'"))
        return response
