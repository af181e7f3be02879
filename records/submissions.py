"""Completed Flow submissions: one row per WhatsApp message id, read back newest first by cursor.

The id (``sub_<digest>``) is derived from the message id, and the message id is unique: a re-run
completion job inserts nothing and finds the row an earlier run stored.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.webhook import digest
from records.schema import submissions as table
from records.sql import insert_new, inserted

FIELDS = ("id", "message_id", "flow", "from", "user_id", "username", "phone_number_id", "flow_token",
          "correlated_by", "session_known", "received_at", "stored_at", "response", "problem", "raw")


def submission_id(message_id: str) -> str:
    return "sub_" + digest(message_id)[:24]


class BadCursor(ValueError):
    """A cursor this store did not hand out."""


@dataclass
class Filters:
    flow: str | None = None
    since: float | None = None  # received at or after (UNIX seconds)
    until: float | None = None  # received before
    user: str | None = None  # a phone (digits) or a BSUID


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeError):
        raise BadCursor("cursor is not one this API returned") from None
    if len(text) > 20 or not text.startswith("s") or not text[1:].isdigit() or not text[1:].isascii():
        raise BadCursor("cursor is not one this API returned")
    return int(text[1:])


def _document(row) -> dict:
    doc = dict(row._mapping)
    doc.pop("seq", None)
    doc["from"] = doc.pop("phone")
    return {k: doc.get(k) for k in FIELDS}


class SubmissionRecords:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, document: dict) -> bool:
        """Store a new submission; False (nothing written) when its message id is stored already."""
        values = {"id": document["id"], "message_id": document["message_id"], "flow": document.get("flow"),
                  "phone": document.get("from"), "user_id": document.get("user_id"),
                  "username": document.get("username"), "phone_number_id": document.get("phone_number_id"),
                  "flow_token": document.get("flow_token"), "correlated_by": document.get("correlated_by"),
                  "session_known": bool(document.get("session_known")),
                  "received_at": float(document.get("received_at") or time.time()),
                  "stored_at": float(document.get("stored_at") or time.time()),
                  "response": document.get("response"), "problem": document.get("problem"),
                  "raw": document.get("raw")}
        with self.engine.begin() as conn:
            return inserted(conn, insert_new(self.engine, table).values(**values))

    def correlate(self, sid: str, *, flow_token: str | None, correlated_by: str | None, flow: str | None,
                  session_known: bool) -> None:
        """What the session told about it, once known; the same values on a re-run."""
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == sid).values(
                flow_token=flow_token, correlated_by=correlated_by, flow=flow, session_known=session_known))

    def get(self, sid: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == sid)).first()
        return _document(row) if row else None

    def _where(self, filters: Filters) -> list:
        where = []
        if filters.flow:
            where.append(table.c.flow == filters.flow)
        if filters.since is not None:
            where.append(table.c.received_at >= filters.since)
        if filters.until is not None:
            where.append(table.c.received_at < filters.until)
        if filters.user:
            where.append(sa.or_(table.c.phone == filters.user, table.c.user_id == filters.user))
        return where

    def page(self, limit: int = 50, cursor: str | None = None,
             filters: Filters | None = None) -> tuple[list[dict], str | None]:
        """Newest stored first; the cursor of the next page, or None on the last one."""
        where = self._where(filters or Filters())
        if cursor:
            where.append(table.c.seq < decode_cursor(cursor))
        query = sa.select(table).where(*where).order_by(table.c.seq.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [_document(r) for r in rows], (encode_cursor(rows[-1].seq) if more and rows else None)

    def recent(self, limit: int = 50) -> list[dict]:
        return self.page(limit)[0]

    def each(self, filters: Filters | None = None, batch: int = 500):
        """Every matching submission, newest first, read a batch at a time (a CSV export)."""
        cursor = None
        while True:
            docs, cursor = self.page(batch, cursor, filters)
            yield from docs
            if cursor is None:
                return

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def erase(self, identifiers: list[str]) -> int:
        if not identifiers:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(table.delete().where(sa.or_(
                table.c.phone.in_(identifiers), table.c.user_id.in_(identifiers)))).rowcount

    def purge(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(table.delete().where(table.c.stored_at < before)).rowcount
