"""Meetings, working copies, published agenda versions and their rendered feeds.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than imported from tables.py: a migration must not change when the
# models do later. tests/storage/test_migrations.py checks the result matches tables.py.
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)
MEETING_ID = sa.String(64)
ITEM_ID = sa.String(128)


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["meeting_id", "number"],
        ["versions.meeting_id", "versions.number"],
        ondelete="CASCADE",
        name=f"fk_{table}_version",
    )


def _meeting_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["meeting_id"], ["meetings.id"], ondelete="CASCADE", name=f"fk_{table}_meeting_id_meetings"
    )


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", MEETING_ID, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meetings"),
    )
    op.create_table(
        "working_copy_meta",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", name="pk_working_copy_meta"),
        _meeting_fk("working_copy_meta"),
    )
    op.create_table(
        "working_sessions",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("session_id", ITEM_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "session_id", name="pk_working_sessions"),
        _meeting_fk("working_sessions"),
    )
    op.create_table(
        "working_deadlines",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("deadline_id", ITEM_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "deadline_id", name="pk_working_deadlines"),
        _meeting_fk("working_deadlines"),
    )
    op.create_table(
        "versions",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("published_at", UTC, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "number", name="pk_versions"),
        _meeting_fk("versions"),
    )
    op.create_table(
        "version_sessions",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("session_id", ITEM_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("last_modified", UTC, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "number", "session_id", name="pk_version_sessions"),
        _version_fk("version_sessions"),
    )
    op.create_table(
        "version_deadlines",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("deadline_id", ITEM_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "number", "deadline_id", name="pk_version_deadlines"),
        _version_fk("version_deadlines"),
    )
    op.create_table(
        "rendered_feeds",
        sa.Column("meeting_id", MEETING_ID, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("gzipped", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(200), nullable=False),
        sa.Column("last_modified", UTC, nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "number", "key", name="pk_rendered_feeds"),
        _version_fk("rendered_feeds"),
    )


def downgrade() -> None:
    for table in (
        "rendered_feeds",
        "version_deadlines",
        "version_sessions",
        "versions",
        "working_deadlines",
        "working_sessions",
        "working_copy_meta",
        "meetings",
    ):
        op.drop_table(table)
