"""The records store: what a business must keep, in SQL (PostgreSQL on Heroku, SQLite for ``make
run``). Redis keeps the hot, bounded state (sessions, windows, queues, exactly-once records); this
keeps the submissions, the consent ledger and the log of every message sent, for as long as the
business says (``RECORDS_RETENTION_DAYS``; the consent ledger for ever).

``app.extensions["records"]`` is a ``Records``; the domain gets it passed in.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from records import engine as _engine
from records.consent import ConsentLedger
from records.messages import MessageLog
from records.submissions import SubmissionRecords

# What a caller catches for "the database is unavailable or refused": a web request answers 503,
# a job raises it and RQ retries.
DatabaseError = SQLAlchemyError


class Records:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.submissions = SubmissionRecords(engine)
        self.consent = ConsentLedger(engine)
        self.messages = MessageLog(engine)

    @classmethod
    def open(cls, url: str) -> Records:
        return cls(_engine.make_engine(url))

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> str:
        return _engine.upgrade(self.engine)

    def erase_user(self, identifiers: list[str]) -> dict:
        """Every submission and message of these phones / BSUIDs. The consent ledger keeps its
        rows: an opt-out must outlive the erasure (it is what stops the next message)."""
        return {"submissions": self.submissions.erase(identifiers),
                "messages": self.messages.erase(identifiers)}

    def purge(self, before: float) -> dict:
        """Submissions and messages stored before ``before`` (UNIX time); not the consent ledger."""
        return {"submissions": self.submissions.purge(before), "messages": self.messages.purge(before)}
