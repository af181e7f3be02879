"""Who may see the dashboard, /metrics and the playground; CSRF for their forms.

- ``DASHBOARD_PASSWORD`` set: HTTP basic auth (any user name) or the login form's session.
- no password, development: open, with a warning in the log and on every page.
- no password, anywhere else: closed (404), so a forgotten setting never exposes the dashboard.

Every POST carries the session's CSRF token and, when the browser sends an Origin, must come from
this origin; the session cookie is SameSite=Lax on top.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from urllib.parse import urlparse

from flask import abort, current_app, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from redis.exceptions import RedisError

from config import is_development

log = logging.getLogger("flowgate.dashboard")

LOGIN_FAILURES_MAX = 10  # per client address and 5 minutes, then 429
LOGIN_WINDOW = 300


def mode(cfg) -> str:
    if cfg.get("DASHBOARD_PASSWORD"):
        return "password"
    return "open" if is_development(cfg) else "closed"


def init_app(app) -> None:
    cfg = app.config
    # The cookie is signed with SECRET_KEY (security.secret_key), never with the Flow key: rotating
    # that key logs nobody out. A login holds a hash of the password (_marker), so changing the
    # password still logs every session out.
    if not cfg.get("SECRET_KEY"):
        raise RuntimeError("security.init_app sets SECRET_KEY before the dashboard's sessions")
    app.session_interface = CookieSessions()
    # Flask's defaults hold these keys already (SameSite None), so set rather than setdefault.
    cfg["SESSION_COOKIE_SAMESITE"] = cfg.get("SESSION_COOKIE_SAMESITE") or "Lax"
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    if not is_development(cfg):
        cfg["SESSION_COOKIE_SECURE"] = True
    state = mode(cfg)
    if state == "open":
        log.warning("DASHBOARD_PASSWORD not set: /dashboard, /metrics and /playground are OPEN (development)")
    elif state == "closed":
        log.info("DASHBOARD_PASSWORD not set: /dashboard, /metrics and /playground are closed")


class CookieSessions(SecureCookieSessionInterface):
    """Flask opens the session on every request and builds its signer first, cookie or not: about
    40 µs on each of Meta's cookie-less Flow and webhook calls (bench.breakdown). Only a request
    that carries the cookie (dashboard, playground) needs the signer."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def _marker(password: str) -> str:
    return hashlib.sha256(("dashboard:" + password).encode()).hexdigest()[:32]


def password_ok(given: str | None) -> bool:
    expected = current_app.config.get("DASHBOARD_PASSWORD") or ""
    return bool(expected) and hmac.compare_digest((given or "").encode(), expected.encode())


def gate(login_redirect: bool = True):
    """A before_request hook: None lets the request through, anything else is the answer."""
    cfg = current_app.config
    state = mode(cfg)
    if state == "closed":
        abort(404)
    if state == "open":
        return None
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        if password_ok(auth.password):
            return None
        return challenge()
    if session.get("dashboard") == _marker(cfg["DASHBOARD_PASSWORD"]):
        return None
    if login_redirect and request.method == "GET":
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")), 303)
    return challenge()


def challenge():
    return ("authentication required\n", 401,
            {"WWW-Authenticate": 'Basic realm="Flowgate dashboard", charset="UTF-8"',
             "Content-Type": "text/plain; charset=utf-8"})


def log_in() -> None:
    session["dashboard"] = _marker(current_app.config["DASHBOARD_PASSWORD"])
    session["csrf"] = secrets.token_urlsafe(32)  # a fresh token with every login


def log_out() -> None:
    session.clear()


def too_many_failures(redis, record: bool = False) -> bool:
    """Guessing the password is slowed to LOGIN_FAILURES_MAX tries per address and window."""
    key = f"fg:dashboard:login_failures:{request.remote_addr or '-'}"
    try:
        if record:
            pipe = redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, LOGIN_WINDOW)
            return pipe.execute()[0] > LOGIN_FAILURES_MAX
        return int(redis.get(key) or 0) >= LOGIN_FAILURES_MAX
    except RedisError:
        return False


def safe_next(target: str | None) -> str:
    """Only our own pages: never an open redirect."""
    if target and target.startswith(("/dashboard", "/playground", "/metrics")) and "//" not in target:
        return target
    return url_for("dashboard.index")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Abort with 403 unless the form carries this session's token and the origin is ours."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        ours = urlparse(request.host_url)
        theirs = urlparse(origin)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            abort(403, "cross-origin form")
    elif origin == "null":
        abort(403, "cross-origin form")
    given = request.form.get("csrf", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, "missing or stale form token; reload the page")
