"""Outgoing chat messages as the outbox holds them: written with the change that caused them,
sent later by the delivery engine, each exactly once."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .chats import ChatRef
from .ids import MeetingId
from .richtext import RichMessage


class OutboxKind(enum.StrEnum):
    SEND = "send"  # a new message
    PIN_TODAY = "pin-today"  # the chat's pinned "today's schedule": edited in place, or sent and pinned


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # permanently: the chat is gone or blocked us; its subscription is stopped


@dataclass(frozen=True)
class OutgoingMessage:
    chat: ChatRef
    message: RichMessage
    kind: OutboxKind = OutboxKind.SEND
    meeting_id: MeetingId | None = None
    # Unique per intended message: enqueuing the same key twice stores one row (reminders,
    # announcements of a version), so a retried publish or a restarted scheduler cannot double-post.
    dedup_key: str | None = None
    cause: str = ""  # for logs and moderators: "version 3", "reminder registration P1D"
    # Messages of one chat with the same key belong together (the letters of one mail thread): the
    # first starts a thread on its platform, the later ones are sent into it.
    thread_key: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    outgoing: OutgoingMessage
    attempts: int
    created_at: datetime
    not_before: datetime

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and restarts: Matrix txn id, Discord nonce (<= 25 characters)."""
        return f"fb{self.id}"


@dataclass(frozen=True)
class ChatThread:
    """Where the messages of one thread_key go in a chat: the platform message that started it, and
    the platform's own thread when one was opened on it (a Discord thread channel)."""

    root_message_id: str
    thread_id: str | None = None
