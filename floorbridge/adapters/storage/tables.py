"""Table definitions. Core objects live in JSON columns (floorbridge.core.codec); the other columns
are the keys and values that queries and constraints need. Migrations are written by hand to match."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC and always read back aware in UTC (SQLite hands back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no timezone; refusing to store a guess")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


MEETING_ID = String(64)
ITEM_ID = String(128)

meetings = Table(
    "meetings",
    metadata,
    Column("id", MEETING_ID, primary_key=True),
    Column("data", Json, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

working_copy_meta = Table(
    "working_copy_meta",
    metadata,
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

working_sessions = Table(
    "working_sessions",
    metadata,
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", ITEM_ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("data", Json, nullable=False),
)

working_deadlines = Table(
    "working_deadlines",
    metadata,
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("deadline_id", ITEM_ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("data", Json, nullable=False),
)

# The primary key (meeting_id, number) is what makes a second publisher of the same number fail.
versions = Table(
    "versions",
    metadata,
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("comment", Text, nullable=False),
    Column("change_count", Integer, nullable=False),
    Column("changes", Json, nullable=False),
)


def _version_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["meeting_id", "number"],
        ["versions.meeting_id", "versions.number"],
        ondelete="CASCADE",
        name=f"fk_{table}_version",
    )


version_sessions = Table(
    "version_sessions",
    metadata,
    Column("meeting_id", MEETING_ID, primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("session_id", ITEM_ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    Column("data", Json, nullable=False),
    _version_fk("version_sessions"),
)

version_deadlines = Table(
    "version_deadlines",
    metadata,
    Column("meeting_id", MEETING_ID, primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("deadline_id", ITEM_ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("data", Json, nullable=False),
    _version_fk("version_deadlines"),
)

rendered_feeds = Table(
    "rendered_feeds",
    metadata,
    Column("meeting_id", MEETING_ID, primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("key", String(200), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("gzipped", LargeBinary, nullable=False),
    Column("etag", String(200), nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    Column("content_type", String(200), nullable=False),
    _version_fk("rendered_feeds"),
)


# ---------------------------------------------------------------- chats (revision 0002)

PLATFORM = String(16)
CHAT_ID = String(255)

chats = Table(
    "chats",
    metadata,
    Column("platform", PLATFORM, primary_key=True),
    Column("chat_id", CHAT_ID, primary_key=True),
    Column("is_group", Boolean, nullable=False),
    Column("language", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="SET NULL"), nullable=True),
    Column("feed_token", String(64), nullable=True, unique=True),
    Column("started", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("platform", PLATFORM, primary_key=True),
    Column("chat_id", CHAT_ID, primary_key=True),
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("tracks", Json, nullable=False),
    Column("kinds", Json, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("stopped_reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_subscriptions_meeting", "meeting_id", "active"),
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
OUTBOX_ID = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    Column("id", OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("platform", PLATFORM, nullable=False),
    Column("chat_id", CHAT_ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("meeting_id", MEETING_ID, nullable=True),
    Column("payload", Json, nullable=False),
    Column("dedup_key", String(255), nullable=True, unique=True),
    Column("cause", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("platform_message_id", String(255), nullable=True),
    Column("last_error", Text, nullable=False),
    Index("ix_outbox_due", "status", "platform", "not_before"),
)

# The message each announcement channel keeps pinned ("today's schedule"), edited in place.
pinned_messages = Table(
    "pinned_messages",
    metadata,
    Column("platform", PLATFORM, primary_key=True),
    Column("chat_id", CHAT_ID, primary_key=True),
    Column("meeting_id", MEETING_ID, primary_key=True),
    Column("message_id", String(255), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
