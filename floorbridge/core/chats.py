"""Delegates and chats on the platforms: who they are, what they follow, who may moderate."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from .ids import MeetingId


class Platform(enum.StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    MATRIX = "matrix"


@dataclass(frozen=True, order=True)
class ChatRef:
    """A conversation: a Telegram chat, a Discord channel (or DM channel), a Matrix room."""

    platform: Platform
    chat_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True, order=True)
class UserRef:
    platform: Platform
    user_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"


class NoticeKind(enum.StrEnum):
    """What a subscription delivers."""

    AGENDA = "agenda"  # changes of a published agenda version
    DEADLINES = "deadlines"  # reminders before deadlines
    ANNOUNCEMENTS = "announcements"  # relayed circular letters (mail issue)


ALL_NOTICES = frozenset(NoticeKind)


@dataclass(frozen=True)
class ChatProfile:
    """Per-chat preferences. A group's meeting is set by its moderators; a private chat chooses."""

    chat: ChatRef
    is_group: bool = False
    language: str = "en"
    timezone: str = ""  # IANA name; "" = the meeting's own
    meeting_id: MeetingId | None = None
    feed_token: str = ""  # "" = no personal feed issued yet
    started: bool = False  # has chosen language and timezone (the `start` dialogue)


@dataclass(frozen=True)
class Subscription:
    chat: ChatRef
    meeting_id: MeetingId
    tracks: frozenset[str] = frozenset()  # track slugs; empty means every track
    kinds: frozenset[NoticeKind] = ALL_NOTICES
    active: bool = True
    stopped_reason: str = ""  # why delivery stopped (bot blocked, chat gone), shown to moderators
    created_at: datetime | None = None

    def wants(self, kind: NoticeKind) -> bool:
        return self.active and kind in self.kinds

    def track_filter(self) -> set[str] | None:
        """For ChangeSet.for_tracks: None means every track."""
        return set(self.tracks) or None


class Role(enum.StrEnum):
    MODERATOR = "moderator"
    SECRETARIAT = "secretariat"


@dataclass(frozen=True)
class Staff:
    """Who may act for a meeting, by platform user id (configured, never claimed from chat)."""

    members: dict[MeetingId, dict[UserRef, Role]] = field(default_factory=dict)

    def role(self, meeting_id: MeetingId, user: UserRef) -> Role | None:
        return self.members.get(meeting_id, {}).get(user)

    def is_staff(self, meeting_id: MeetingId, user: UserRef) -> bool:
        return self.role(meeting_id, user) is not None

    def meetings_of(self, user: UserRef) -> list[MeetingId]:
        return sorted(m for m, people in self.members.items() if user in people)
