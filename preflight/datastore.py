"""Redis: reachable, never evicting, not nearly full. The records database: reachable, its schema
at the newest revision (or about to be, by the release phase).

Everything lives in Redis: RQ's queues and jobs, Flow sessions, dedupe marks. An evicting
``maxmemory-policy`` (allkeys-lru, volatile-ttl, ...) deletes some of them when memory fills up:
jobs vanish from their queues and sessions answer 427. ``noeviction`` makes a full Redis refuse
writes instead, which the app reports (webhooks answer 503 and Meta redelivers).
"""
from __future__ import annotations

from urllib.parse import urlparse

from redis.exceptions import RedisError

import storage

POLICY_FIX = ("heroku redis:maxmemory --policy noeviction (elsewhere: CONFIG SET maxmemory-policy "
              "noeviction, or maxmemory-policy noeviction in redis.conf)")


def shown(url: str) -> str:
    """The URL without its password."""
    parts = urlparse(url)
    if parts.password:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()
    return url


def check(report, cfg) -> None:
    url = cfg["REDIS_URL"]
    if not url:
        report.skip("redis", "REDIS_URL not set" + ("" if report.production else
                                                     ": development uses the embedded Redis"))
        return
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        report.skip("redis", "not checked: REDIS_URL is not a Redis URL")
        return
    client = storage.client_for(url, verify_tls=not cfg["REDIS_SSL_NO_VERIFY"])
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        memory = storage.memory(client)
    except RedisError as exc:
        report.fail("redis", f"cannot reach {shown(url)}: {type(exc).__name__}: {exc}",
                    "check REDIS_URL (heroku config:get REDIS_URL); with a self-signed rediss:// certificate "
                    "keep REDIS_SSL_NO_VERIFY=true")
        return
    finally:
        client.close()
    report.ok("redis", f"reachable at {shown(url)} (Redis {version})")
    if memory.policy is None:
        report.warn("redis-policy", "INFO memory does not say which maxmemory-policy is set",
                    "make sure it is noeviction: " + POLICY_FIX)
    elif memory.evicts:
        report.fail("redis-policy", f"maxmemory-policy is {memory.policy}: when memory fills, Redis deletes "
                                    "keys, so RQ loses jobs and Flow sessions vanish", POLICY_FIX)
    else:
        report.ok("redis-policy", "maxmemory-policy noeviction")
    if memory.level == "full":
        report.fail("redis-memory", f"{memory.describe()}: Redis refuses writes",
                    "a larger Redis plan, or lower FLOW_SESSION_LIFETIME")
    elif memory.share is not None and memory.share > storage.MEMORY_WARN_SHARE:
        report.warn("redis-memory", f"{memory.describe()}: above {storage.MEMORY_WARN_SHARE:.0%}",
                    "a larger Redis plan before it fills (writes are refused when it is full)")
    else:
        report.ok("redis-memory", memory.describe())


def check_records(report, cfg) -> None:
    """The SQL store (records/): a failure here is a deploy that would lose no data but answer
    503 on every submissions read and retry every completion job."""
    from sqlalchemy.exc import SQLAlchemyError

    from records import Records
    from records.engine import current, head

    url = cfg.get("DATABASE_URL")
    if not url:
        if report.production:
            report.fail("records", "DATABASE_URL is not set: submissions and opt-outs have nowhere to go",
                        "heroku addons:create heroku-postgresql (it sets DATABASE_URL)")
        else:
            report.skip("records", "DATABASE_URL not set: development uses instance/flowgate.sqlite3")
        return
    try:
        records = Records.open(url)
    except ValueError as exc:
        report.fail("records", f"DATABASE_URL is not usable: {exc}",
                    "postgres://… (Heroku Postgres) or sqlite:///PATH")
        return
    shown_url = shown(records.engine.url.render_as_string(hide_password=False))
    try:
        revision = current(records.engine)
    except SQLAlchemyError as exc:
        report.fail("records", f"cannot reach {shown_url}: {type(exc).__name__}",
                    "check DATABASE_URL (heroku config:get DATABASE_URL) and the database's status "
                    "(heroku pg:info)")
        return
    finally:
        records.engine.dispose()
    if revision == head():
        report.ok("records", f"{records.backend} at {shown_url}, schema {revision}")
    else:
        report.warn("records", f"{records.backend} at {shown_url}: schema {revision or 'not created'}, "
                               f"the code needs {head()}",
                    "flask --app app records migrate (the release phase runs it after this check)")
