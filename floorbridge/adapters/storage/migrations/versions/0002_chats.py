"""Chats, subscriptions, the outbox and pinned messages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)
MEETING_ID = sa.String(64)
PLATFORM = sa.String(16)
CHAT_ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("chat_id", CHAT_ID, nullable=False),
        sa.Column("is_group", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=True),
        sa.Column("feed_token", sa.String(64), nullable=True),
        sa.Column("started", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", name="pk_chats"),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="SET NULL", name="fk_chats_meeting_id_meetings"
        ),
        sa.UniqueConstraint("feed_token", name="uq_chats_feed_token"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("chat_id", CHAT_ID, nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("tracks", JSON, nullable=False),
        sa.Column("kinds", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("stopped_reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", "meeting_id", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE", name="fk_subscriptions_meeting_id_meetings"
        ),
    )
    op.create_index("ix_subscriptions_meeting", "subscriptions", ["meeting_id", "active"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("chat_id", CHAT_ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("platform_message_id", sa.String(255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "platform", "not_before"])
    op.create_table(
        "pinned_messages",
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("chat_id", CHAT_ID, nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", "meeting_id", name="pk_pinned_messages"),
    )


def downgrade() -> None:
    op.drop_table("pinned_messages")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_subscriptions_meeting", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("chats")
