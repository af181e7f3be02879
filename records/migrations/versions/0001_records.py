"""Records: submissions, the consent ledger, the outbound message log (issue 20).

Revision ID: 0001_records
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001_records"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("message_id", sa.String(256), nullable=False, unique=True),
        sa.Column("flow", sa.String(128), index=True),
        sa.Column("phone", sa.String(32), index=True),
        sa.Column("user_id", sa.String(256), index=True),
        sa.Column("username", sa.String(256)),
        sa.Column("phone_number_id", sa.String(64)),
        sa.Column("flow_token", sa.String(256), index=True),
        sa.Column("correlated_by", sa.String(32)),
        sa.Column("session_known", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False, index=True),
        sa.Column("stored_at", sa.Float, nullable=False, index=True),
        sa.Column("response", sa.JSON),
        sa.Column("problem", sa.Text),
        sa.Column("raw", sa.Text),
    )
    op.create_table(
        "consent",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(260), nullable=False, index=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("message_id", sa.String(256)),
        sa.Column("dedupe", sa.String(600), nullable=False, unique=True),
    )
    op.create_table(
        "messages",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(300), index=True),
        sa.Column("phone", sa.String(32), index=True),
        sa.Column("user_id", sa.String(256), index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32)),
        sa.Column("template", sa.String(256)),
        sa.Column("flow_token", sa.String(256), index=True),
        sa.Column("sent_at", sa.Float, nullable=False, index=True),
    )
    op.create_table(
        "message_statuses",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False, index=True),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_title", sa.String(256)),
        sa.Column("recipient", sa.String(256), index=True),
        sa.UniqueConstraint("message_id", "status", name="uq_message_status"),
    )


def downgrade() -> None:
    for table in ("message_statuses", "messages", "consent", "submissions"):
        op.drop_table(table)
