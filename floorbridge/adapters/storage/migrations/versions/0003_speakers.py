"""Lists of speakers and their audit trail, speaking-slot calls and requests, console accounts,
sessions and one-time login links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)
MEETING_ID = sa.String(64)
ITEM_ID = sa.String(128)
SLOT_CALL_ID = sa.String(64)
TOKEN_HASH = sa.String(128)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "speaker_lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("session_id", ITEM_ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("seconds_per_speaker", sa.Integer(), nullable=False),
        sa.Column("budgets", JSON, nullable=False),
        sa.Column("waiting", JSON, nullable=False),
        sa.Column("current_id", sa.Integer(), nullable=True),
        sa.Column("last_id", sa.Integer(), nullable=True),
        sa.Column("next_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_speaker_lists"),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE", name="fk_speaker_lists_meeting_id_meetings"
        ),
        sa.UniqueConstraint("meeting_id", "session_id", name="uq_speaker_lists_session"),
    )
    op.create_table(
        "speakers",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("participant_key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("delegation", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("remote", sa.Boolean(), nullable=False),
        sa.Column("notify", sa.Text(), nullable=False),
        sa.Column("speech_type", sa.String(32), nullable=False),
        sa.Column("requested_at", UTC, nullable=False),
        sa.Column("receipt", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("ended_at", UTC, nullable=True),
        sa.Column("paused_at", UTC, nullable=True),
        sa.Column("paused_seconds", sa.Double(), nullable=False),
        sa.Column("allotted_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("list_id", "speaker_id", name="pk_speakers"),
        sa.ForeignKeyConstraint(
            ["list_id"], ["speaker_lists.id"], ondelete="CASCADE", name="fk_speakers_list_id_speaker_lists"
        ),
    )
    op.create_index("ix_speakers_participant", "speakers", ["participant_key"])
    op.create_table(
        "queue_audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor_key", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("moderator", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_audit"),
        sa.ForeignKeyConstraint(
            ["list_id"], ["speaker_lists.id"], ondelete="CASCADE", name="fk_queue_audit_list_id_speaker_lists"
        ),
    )
    op.create_index("ix_queue_audit_list", "queue_audit", ["list_id", "version"])
    op.create_table(
        "slot_calls",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("call_id", SLOT_CALL_ID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("deadline", UTC, nullable=False),
        sa.Column("sessions", JSON, nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("one_per_delegation", sa.Boolean(), nullable=False),
        sa.Column("modes", JSON, nullable=False),
        sa.Column("languages", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "call_id", name="pk_slot_calls"),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE", name="fk_slot_calls_meeting_id_meetings"
        ),
    )
    op.create_table(
        "slot_requests",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("call_id", SLOT_CALL_ID, nullable=False),
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("delegation", sa.Text(), nullable=False),
        sa.Column("stakeholder", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("session_id", ITEM_ID, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_session", ITEM_ID, nullable=True),
        sa.Column("slot_order", sa.Integer(), nullable=False),
        sa.Column("slot_start", UTC, nullable=True),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC, nullable=True),
        sa.Column("notify", sa.Text(), nullable=False),
        sa.Column("feed_token", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("ref", name="pk_slot_requests"),
        sa.ForeignKeyConstraint(
            ["meeting_id", "call_id"],
            ["slot_calls.meeting_id", "slot_calls.call_id"],
            ondelete="CASCADE",
            name="fk_slot_requests_call",
        ),
        sa.UniqueConstraint("feed_token", name="uq_slot_requests_feed_token"),
    )
    op.create_index("ix_slot_requests_call", "slot_requests", ["meeting_id", "call_id"])
    op.create_index("ix_slot_requests_requester", "slot_requests", ["requester"])
    op.create_table(
        "console_accounts",
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_console_accounts"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", TOKEN_HASH, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("csrf", sa.String(128), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_console_sessions"),
    )
    op.create_table(
        "login_links",
        sa.Column("token_hash", TOKEN_HASH, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_login_links"),
    )


def downgrade() -> None:
    op.drop_table("login_links")
    op.drop_table("console_sessions")
    op.drop_table("console_accounts")
    op.drop_index("ix_slot_requests_requester", table_name="slot_requests")
    op.drop_index("ix_slot_requests_call", table_name="slot_requests")
    op.drop_table("slot_requests")
    op.drop_table("slot_calls")
    op.drop_index("ix_queue_audit_list", table_name="queue_audit")
    op.drop_table("queue_audit")
    op.drop_index("ix_speakers_participant", table_name="speakers")
    op.drop_table("speakers")
    op.drop_table("speaker_lists")
