"""The SQL engine and its schema: one engine per process, migrations by Alembic.

PostgreSQL in production (Heroku's ``postgres://`` URL is accepted), a SQLite file under
``instance/`` in development. A fresh database gets the current tables at once and is stamped with
the newest revision (Alembic's own recipe); an older one is upgraded revision by revision.
"""
from __future__ import annotations

import fcntl
import logging
import os
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from records.schema import metadata

log = logging.getLogger("flowgate.records")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalize_url(url: str) -> str:
    """``postgres://`` (Heroku's form, which SQLAlchemy refuses) and ``postgresql://`` name the
    psycopg 3 driver; anything else must already be a SQLAlchemy URL of PostgreSQL or SQLite."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError("not a database URL") from None
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValueError(f"{parsed.get_backend_name()} is not supported (PostgreSQL or SQLite)")
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Several processes (gunicorn's, the worker's) write one file: wait for its lock, and let
        # readers go on while one writes (WAL).
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # pre_ping: a connection the server dropped (a restart, a failover) is replaced before use,
        # not handed to a job that then fails; timeouts so an outage fails a request fast. Jobs run
        # in threads (WORKER_THREADS), but each holds a connection for one short transaction,
        # never across a send: five per process at most keep a web dyno's two processes and a
        # worker dyno within Heroku's smallest plan (20 connections, heroku pg:info).
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=3, pool_timeout=10,
                                  connect_args={"connect_timeout": 5})
    # A forked child (gunicorn's workers, the worker pool) must not share its parent's sockets.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL's own recommendation: a commit syncs at checkpoints only. A power cut may lose the last
    # commits of a development machine, never corrupt the file; production runs PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    from alembic.script import ScriptDirectory

    cfg = alembic_config(None)  # type: ignore[arg-type]
    return ScriptDirectory.from_config(cfg).get_current_head()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; says what it did. Safe to run again."""
    from alembic import command

    before = current(engine)
    if before == head():
        return f"schema up to date ({before})"
    with _file_lock(engine):
        before = current(engine)
        if before is None and not sa.inspect(engine).get_table_names():
            metadata.create_all(engine)  # a fresh database: today's tables, stamped
            command.stamp(alembic_config(engine), "head")
            return f"schema created ({head()})"
        command.upgrade(alembic_config(engine), "head")
    return f"schema upgraded from {before} to {head()}"


class _file_lock:
    """SQLite: processes starting together (gunicorn's and the worker's under ``make run``) create
    the schema once. PostgreSQL migrates in the release phase, one process: no lock needed."""

    def __init__(self, engine: Engine):
        path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        self.path = f"{path}.lock" if path and path != ":memory:" else None
        self.handle = None

    def __enter__(self):
        if self.path:
            self.handle = open(self.path, "w")  # noqa: SIM115 - held until __exit__
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
