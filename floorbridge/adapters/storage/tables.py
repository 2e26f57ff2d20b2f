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
    Date,
    DateTime,
    Double,
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
    UniqueConstraint,
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
    # What a feed request is looked up by: the token's SHA-256 (hex), so no comparison of the
    # token itself can be timed (0005).
    Column("feed_token_hash", String(64), nullable=True, unique=True),
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
    # Messages with the same key in one chat stay together in the platform's thread (0004).
    Column("thread_key", String(255), nullable=True),
    # The process whose delivery worker took the row (PostgreSQL, FOR UPDATE SKIP LOCKED), until it
    # is settled; a new owner of the platform takes back what a gone owner left unsettled (0005).
    Column("claimed_by", String(64), nullable=True),
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


# ---------------------------------------------------------------- lists of speakers, speaking slots, console (0003)

# One row per list of speakers; `version` is the optimistic-concurrency token every save moves on.
speaker_lists = Table(
    "speaker_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", ITEM_ID, nullable=False),
    Column("version", Integer, nullable=False),
    Column("closed", Boolean, nullable=False),
    Column("seconds_per_speaker", Integer, nullable=False),
    Column("budgets", Json, nullable=False),
    Column("waiting", Json, nullable=False),
    Column("current_id", Integer, nullable=True),
    Column("last_id", Integer, nullable=True),
    Column("next_id", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("meeting_id", "session_id", name="uq_speaker_lists_session"),
)

speakers = Table(
    "speakers",
    metadata,
    Column("list_id", Integer, ForeignKey("speaker_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("speaker_id", Integer, primary_key=True, autoincrement=False),
    Column("participant_key", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("delegation", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("remote", Boolean, nullable=False),
    Column("notify", Text, nullable=False),
    Column("speech_type", String(32), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("receipt", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("paused_seconds", Double, nullable=False),
    Column("allotted_seconds", Integer, nullable=False),
    # The list version that last wrote the row: another process reads only what changed since the
    # version it holds (0005).
    Column("changed_in", Integer, nullable=False, server_default="0"),
    Index("ix_speakers_participant", "participant_key"),
    Index("ix_speakers_changed", "list_id", "changed_in"),
)

queue_audit = Table(
    "queue_audit",
    metadata,
    Column("id", OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("list_id", Integer, ForeignKey("speaker_lists.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor_key", Text, nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("moderator", Boolean, nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Json, nullable=False),
    Index("ix_queue_audit_list", "list_id", "version"),
)

SLOT_CALL_ID = String(64)

slot_calls = Table(
    "slot_calls",
    metadata,
    Column("meeting_id", MEETING_ID, ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("call_id", SLOT_CALL_ID, primary_key=True),
    Column("title", Text, nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("sessions", Json, nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("one_per_delegation", Boolean, nullable=False),
    Column("modes", Json, nullable=False),
    Column("languages", Json, nullable=False),
)

slot_requests = Table(
    "slot_requests",
    metadata,
    Column("ref", String(32), primary_key=True),
    Column("call_id", SLOT_CALL_ID, nullable=False),
    Column("meeting_id", MEETING_ID, nullable=False),
    Column("requester", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("delegation", Text, nullable=False),
    Column("stakeholder", String(32), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("session_id", ITEM_ID, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("language", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("approved_session", ITEM_ID, nullable=True),
    Column("slot_order", Integer, nullable=False),
    Column("slot_start", UtcDateTime, nullable=True),
    Column("slot_minutes", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    Column("notify", Text, nullable=False),
    Column("feed_token", String(64), nullable=True, unique=True),
    Column("feed_token_hash", String(64), nullable=True, unique=True),  # as in chats (0005)
    ForeignKeyConstraint(
        ["meeting_id", "call_id"],
        ["slot_calls.meeting_id", "slot_calls.call_id"],
        ondelete="CASCADE",
        name="fk_slot_requests_call",
    ),
    Index("ix_slot_requests_call", "meeting_id", "call_id"),
    Index("ix_slot_requests_requester", "requester"),
)

console_accounts = Table(
    "console_accounts",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("roles", Json, nullable=False),
)

# Tokens are kept only as hashes (a hex SHA-256 is 64 characters; room is left for other schemes).
TOKEN_HASH = String(128)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", TOKEN_HASH, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("csrf", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

login_links = Table(
    "login_links",
    metadata,
    Column("token_hash", TOKEN_HASH, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)


# ---------------------------------------------------------------- mailing-list announcements (0004)

# Every message received, accepted or quarantined: nothing acknowledged is ever lost. `raw` keeps
# the bytes as received (a moderator's release re-reads them); `dedup_key` ("meeting:message-id") is
# set on archived messages only, so the database itself refuses a second copy of an announcement.
mail_messages = Table(
    "mail_messages",
    metadata,
    Column("id", OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("meeting_id", MEETING_ID, nullable=True),
    Column("message_id", Text, nullable=False),
    Column("dedup_key", String(255), nullable=True, unique=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("parsed", Json, nullable=True),
    Column("subject", Text, nullable=False),
    Column("sender", Text, nullable=False),
    Column("list_id", Text, nullable=False),
    Column("thread_root", Text, nullable=False),
    Column("dkim", String(32), nullable=False),
    Column("relay", String(16), nullable=False),
    Column("deadlines", Json, nullable=False),
    Column("copies", Integer, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("decided_at", UtcDateTime, nullable=True),
    # Derived from status, relay and deadlines on every write, so that the moderators' list and the
    # start-up check read only the rows they need: the last day a moderator has something to do
    # with the message (NULL: nothing; 9999-12-31: until done), and whether it has accepted deadlines.
    Column("review_until", Date, nullable=True),
    Column("accepted_deadlines", Boolean, nullable=False),
    Index("ix_mail_messages_meeting", "meeting_id", "status", "id"),
    Index("ix_mail_messages_sha256", "sha256"),
    Index("ix_mail_messages_review", "meeting_id", "review_until"),
)

# The platform message that starts a mail thread in a chat: later messages of the thread reply to
# it (Telegram), go into the thread started on it (Discord) or relate to it as m.thread (Matrix).
chat_threads = Table(
    "chat_threads",
    metadata,
    Column("platform", PLATFORM, primary_key=True),
    Column("chat_id", CHAT_ID, primary_key=True),
    Column("thread_key", String(255), primary_key=True),
    Column("root_message_id", String(255), nullable=False),
    Column("thread_id", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
