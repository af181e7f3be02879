"""The consent ledger: every opt-out and opt-in, on any channel, kept for ever.

A person may be known by a phone, a BSUID and a parent BSUID; each event is written once per
identifier, and whether they may be messaged is the newest event for any of them. Nothing here
expires: a STOP is honoured until the same person opts in again.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from records.schema import consent as table
from records.sql import insert_new

# released: the identifier stopped being this person's (a number they gave up, which a carrier may
# give to someone else): whatever it said before no longer holds for it.
OPT_OUT, OPT_IN, RELEASED = "opt_out", "opt_in", "released"


def subjects(phone: str | None = None, bsuid: str | None = None,
             parent_bsuid: str | None = None) -> list[str]:
    return [f"{kind}:{value}" for kind, value in (("p", phone), ("b", bsuid), ("b", parent_bsuid)) if value]


class ConsentLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, subjects_: list[str], event: str, channel: str, *, at: float | None = None,
               message_id: str | None = None) -> bool:
        """Write the event for each identifier; True if it changed the person's state (an
        opt-out of someone who was not opted out). Writing the same event for the same cause
        again (a retried job) writes nothing."""
        if event not in (OPT_OUT, OPT_IN, RELEASED) or not subjects_:
            raise ValueError("an opt_out, opt_in or released, for at least one identifier")
        at = time.time() if at is None else at
        cause = message_id or f"at:{at:.3f}"
        with self.engine.begin() as conn:
            before = self._latest(conn, subjects_)
            for subject in subjects_:
                conn.execute(insert_new(self.engine, table).values(
                    subject=subject, event=event, channel=channel[:32], at=at,
                    message_id=message_id, dedupe=f"{event}|{subject}|{cause}"[:600]))
        return (before == OPT_OUT) != (event == OPT_OUT)

    @staticmethod
    def _latest(conn, subjects_: list[str]) -> str | None:
        return conn.execute(sa.select(table.c.event).where(table.c.subject.in_(subjects_))
                            .order_by(table.c.at.desc(), table.c.seq.desc()).limit(1)).scalar()

    def opted_out(self, subjects_: list[str]) -> bool:
        if not subjects_:
            return False
        with self.engine.connect() as conn:
            return self._latest(conn, subjects_) == OPT_OUT

    def history(self, subjects_: list[str]) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.subject.in_(subjects_))
                                .order_by(table.c.at, table.c.seq)).all()
        return [dict(r._mapping) for r in rows]
