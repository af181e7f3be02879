"""The tables of the records store: what a business must keep, unlike Redis's hot, bounded state.

Times are UNIX seconds (floats), as everywhere else in Flowgate; identities are kept as the
webhooks give them (phone digits, BSUIDs), so a data-protection erase finds them by value.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite makes only an INTEGER PRIMARY KEY its row id (auto-incrementing); PostgreSQL wants a BIGINT.
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

submissions = sa.Table(
    "submissions", metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),  # insertion order: the cursor
    sa.Column("id", sa.String(40), nullable=False, unique=True),  # sub_<digest of the wamid>
    # Unique: a re-run completion job inserts nothing (INSERT ... ON CONFLICT DO NOTHING).
    sa.Column("message_id", sa.String(256), nullable=False, unique=True),
    sa.Column("flow", sa.String(128), index=True),
    sa.Column("phone", sa.String(32), index=True),
    sa.Column("user_id", sa.String(256), index=True),
    sa.Column("username", sa.String(256)),
    sa.Column("phone_number_id", sa.String(64)),
    sa.Column("flow_token", sa.String(256), index=True),
    sa.Column("correlated_by", sa.String(32)),
    sa.Column("session_known", sa.Boolean, nullable=False, default=False),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("stored_at", sa.Float, nullable=False, index=True),
    sa.Column("response", sa.JSON),
    sa.Column("problem", sa.Text),
    sa.Column("raw", sa.Text),
)

# Every opt-out and opt-in, never updated: the newest row for any of a person's identifiers says
# whether they may be messaged. One row per identifier (phone, BSUID, parent BSUID), so a STOP
# sent from a phone still holds for a send addressed to the BSUID and the other way round.
consent = sa.Table(
    "consent", metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(260), nullable=False, index=True),  # p:<phone> or b:<bsuid>
    sa.Column("event", sa.String(16), nullable=False),  # opt_out | opt_in
    sa.Column("channel", sa.String(32), nullable=False),  # cloud | wasender | migrated | ...
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("message_id", sa.String(256)),  # the message that caused it
    # What makes a retried job's write a no-op: the event, the subject and its cause.
    sa.Column("dedupe", sa.String(600), nullable=False, unique=True),
)

# One row per message sent; its statuses in their own table, as they may arrive before the send
# is recorded (a status webhook races the job that sent the message).
messages = sa.Table(
    "messages", metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(256), nullable=False, unique=True),  # wamid or WASender id
    sa.Column("idempotency_key", sa.String(300), index=True),
    sa.Column("phone", sa.String(32), index=True),
    sa.Column("user_id", sa.String(256), index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32)),  # text | interactive | template | document | image
    sa.Column("template", sa.String(256)),
    sa.Column("flow_token", sa.String(256), index=True),
    sa.Column("sent_at", sa.Float, nullable=False, index=True),
)

message_statuses = sa.Table(
    "message_statuses", metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(256), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),  # sent | delivered | read | failed
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("error_code", sa.Integer),
    sa.Column("error_title", sa.String(256)),
    sa.Column("recipient", sa.String(256), index=True),
    sa.UniqueConstraint("message_id", "status", name="uq_message_status"),
)
