"""Helpers the record stores share: an insert that skips a row already there, in either dialect."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def insert_new(engine: Engine, table: sa.Table):
    """``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite both have it): writing the
    same row again, as a retried job does, changes nothing and raises nothing."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def inserted(conn, statement) -> bool:
    """Run an ``insert_new`` statement; True if it wrote the row. By ``RETURNING`` (both dialects
    have it): with PostgreSQL's implicit RETURNING the driver's rowcount is -1 whatever happened."""
    return conn.execute(statement.returning(sa.literal_column("1"))).first() is not None
