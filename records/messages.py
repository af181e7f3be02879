"""The outbound message log: every message sent (which id, to whom, on which channel, what kind,
which template, under which idempotency key) and each status Meta reports for it.

Both writes are idempotent (unique on the message id, and on message id + status), so a retried
job or a redelivered status webhook adds nothing.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from records.schema import message_statuses as statuses
from records.schema import messages as table
from records.sql import insert_new, inserted


class MessageLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def sent(self, message_id: str, *, channel: str, phone: str | None = None, user_id: str | None = None,
             kind: str | None = None, template: str | None = None, key: str | None = None,
             flow_token: str | None = None, at: float | None = None) -> bool:
        with self.engine.begin() as conn:
            return inserted(conn, insert_new(self.engine, table).values(
                message_id=message_id[:256], channel=channel[:32], phone=phone, user_id=user_id,
                kind=(kind or None) and kind[:32], template=template, idempotency_key=key and key[:300],
                flow_token=flow_token, sent_at=time.time() if at is None else at))

    def status(self, message_id: str, status: str, *, at: float | None = None, error_code: int | None = None,
               error_title: str | None = None, recipient: str | None = None) -> bool:
        with self.engine.begin() as conn:
            return inserted(conn, insert_new(self.engine, statuses).values(
                message_id=message_id[:256], status=status[:16], at=time.time() if at is None else at,
                error_code=error_code, error_title=(error_title or None) and error_title[:256],
                recipient=recipient and recipient[:256]))

    def _with_statuses(self, conn, rows) -> list[dict]:
        found = [dict(r._mapping) for r in rows]
        ids = [m["message_id"] for m in found]
        by_id: dict[str, list[dict]] = {}
        if ids:
            for s in conn.execute(sa.select(statuses).where(statuses.c.message_id.in_(ids))
                                  .order_by(statuses.c.at, statuses.c.seq)):
                by_id.setdefault(s.message_id, []).append({"status": s.status, "at": s.at,
                                                           "error_code": s.error_code,
                                                           "error_title": s.error_title})
        for m in found:
            m.pop("seq", None)
            m["statuses"] = by_id.get(m["message_id"], [])
        return found

    def get(self, message_id: str) -> dict | None:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.message_id == message_id)).all()
            found = self._with_statuses(conn, rows)
        return found[0] if found else None

    def for_tokens(self, tokens: list[str], limit: int = 200) -> dict[str, list[dict]]:
        """The messages each session's token carried or concerned, oldest first (the timeline)."""
        if not tokens:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.flow_token.in_(tokens))
                                .order_by(table.c.sent_at, table.c.seq).limit(limit)).all()
            found = self._with_statuses(conn, rows)
        out: dict[str, list[dict]] = {}
        for m in found:
            out.setdefault(m["flow_token"], []).append(m)
        return out

    def for_user(self, identifiers: list[str], limit: int = 100) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(sa.or_(
                table.c.phone.in_(identifiers), table.c.user_id.in_(identifiers)))
                .order_by(table.c.sent_at.desc()).limit(limit)).all()
            return self._with_statuses(conn, rows)

    def erase(self, identifiers: list[str]) -> int:
        if not identifiers:
            return 0
        with self.engine.begin() as conn:
            ids = sa.select(table.c.message_id).where(sa.or_(
                table.c.phone.in_(identifiers), table.c.user_id.in_(identifiers)))
            conn.execute(statuses.delete().where(sa.or_(statuses.c.message_id.in_(ids),
                                                        statuses.c.recipient.in_(identifiers))))
            return conn.execute(table.delete().where(sa.or_(
                table.c.phone.in_(identifiers), table.c.user_id.in_(identifiers)))).rowcount

    def purge(self, before: float) -> int:
        with self.engine.begin() as conn:
            conn.execute(statuses.delete().where(statuses.c.at < before))
            return conn.execute(table.delete().where(table.c.sent_at < before)).rowcount
