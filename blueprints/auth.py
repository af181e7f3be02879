"""Who may see the dashboard, /metrics and the playground; CSRF for their forms; the API's token.

- ``DASHBOARD_PASSWORD`` set: HTTP basic auth (any user name) or the login form's session.
- no password, development: open, with a warning in the log and on every page.
- no password, anywhere else: closed (404), so a forgotten setting never exposes the dashboard.

Every password try, by basic auth or the form, goes through one throttle in Redis (so it holds
across gunicorn processes and dynos): ``LOGIN_TRIES_MAX`` per client address and window, then 429
with Retry-After, even for the right password, until the window ends.

Every POST carries the session's CSRF token and, when the browser sends an Origin, must come from
this origin; the session cookie is SameSite=Lax on top.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from urllib.parse import urlparse

from flask import abort, current_app, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import TooManyRequests

from config import is_development

log = logging.getLogger("flowgate.dashboard")

LOGIN_TRIES_MAX = 10  # password tries per client address and window, then 429
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
    app.extensions["login_throttle"] = Throttle(app.extensions["redis"], LOGIN_TRIES_MAX, LOGIN_WINDOW)
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
        if check_password(auth.password):
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


class Throttle:
    """Password tries per client address in a fixed window, counted in Redis.

    A try is counted *before* the password is compared, in one script, so a burst of parallel
    guesses cannot all pass the check before any is counted; a right password gives its try back
    (a Prometheus scraper using basic auth never locks itself out). Redis errors propagate: while
    Redis is down the pages answer 503 rather than let guesses through uncounted.
    """

    _TAKE = """
    local n = redis.call('INCR', KEYS[1])
    if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
    if n > tonumber(ARGV[2]) then return math.max(redis.call('TTL', KEYS[1]), 1) end
    return 0
    """
    _GIVE_BACK = """
    if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
    return 0
    """

    def __init__(self, redis, limit: int, window: int):
        self.limit, self.window = limit, window
        self._take = redis.register_script(self._TAKE)
        self._give_back = redis.register_script(self._GIVE_BACK)

    @staticmethod
    def key(address: str) -> str:
        return f"fg:auth:tries:{address}"

    def take(self, address: str) -> int:
        """0 when this try may go ahead, else the seconds until the address may try again."""
        return int(self._take(keys=[self.key(address)], args=[self.window, self.limit]))

    def give_back(self, address: str) -> None:
        self._give_back(keys=[self.key(address)])


def client_address() -> str:
    """Whom the throttle counts: the address the outermost trusted proxy saw.

    Heroku's router *appends* the address it accepted the connection from to X-Forwarded-For;
    anything to the left of it came from the client and can be forged. So with
    ``TRUSTED_PROXY_HOPS=n`` (1 on Heroku) it is the n-th entry from the right; with 0 (no proxy),
    the socket's own peer. An IPv6 client counts by its /64, which one host usually holds whole.
    """
    hops = current_app.config.get("TRUSTED_PROXY_HOPS") or 0
    forwarded = [part.strip() for part in ",".join(request.headers.getlist("X-Forwarded-For")).split(",")]
    forwarded = [part for part in forwarded if part]
    raw = forwarded[-hops] if hops and len(forwarded) >= hops else (request.remote_addr or "-")
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        return raw[:64]
    if address.version == 6 and address.ipv4_mapped:  # gunicorn on [::] sees IPv4 clients so
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def check_password(given: str | None) -> bool:
    """Compare a password try, counted by the throttle; TooManyRequests (429) while locked."""
    throttle, address = current_app.extensions["login_throttle"], client_address()
    wait = throttle.take(address)
    if wait:
        raise TooManyRequests("too many password attempts from this address; try again later",
                              retry_after=wait)
    if password_ok(given):
        throttle.give_back(address)
        return True
    log.warning("dashboard password wrong (from %s)", address)
    return False


def require_api_token():
    """before_request of the API blueprints: the bearer ``API_TOKEN``, compared in constant time.
    403 when no token is configured (the API is off), 401 without it or with a wrong one."""
    expected = current_app.config["API_TOKEN"]
    if not expected:
        return jsonify(error="Forbidden", description="the API is disabled: API_TOKEN is not set"), 403
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        response = jsonify(error="Unauthorized", description="missing or wrong bearer token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="flowgate"'
        return response, 401
    return None


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
