"""Mailing-list announcements (archive and quarantine), chat threads for mail threads, and the
outbox's thread key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("meeting_id", sa.String(64), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("parsed", JSON, nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("list_id", sa.Text(), nullable=False),
        sa.Column("thread_root", sa.Text(), nullable=False),
        sa.Column("dkim", sa.String(32), nullable=False),
        sa.Column("relay", sa.String(16), nullable=False),
        sa.Column("deadlines", JSON, nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("review_until", sa.Date(), nullable=True),
        sa.Column("accepted_deadlines", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mail_messages"),
        sa.UniqueConstraint("dedup_key", name="uq_mail_messages_dedup_key"),
    )
    op.create_index("ix_mail_messages_meeting", "mail_messages", ["meeting_id", "status", "id"])
    op.create_index("ix_mail_messages_sha256", "mail_messages", ["sha256"])
    op.create_index("ix_mail_messages_review", "mail_messages", ["meeting_id", "review_until"])
    op.create_table(
        "chat_threads",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(255), nullable=False),
        sa.Column("thread_key", sa.String(255), nullable=False),
        sa.Column("root_message_id", sa.String(255), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", "thread_key", name="pk_chat_threads"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("thread_key", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("thread_key")
    op.drop_table("chat_threads")
    op.drop_index("ix_mail_messages_review", table_name="mail_messages")
    op.drop_index("ix_mail_messages_sha256", table_name="mail_messages")
    op.drop_index("ix_mail_messages_meeting", table_name="mail_messages")
    op.drop_table("mail_messages")
