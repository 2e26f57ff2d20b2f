"""What the core needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .agenda import Session
from .chats import ChatProfile, ChatRef, Subscription
from .deadline import Deadline
from .ids import MeetingId
from .meeting import Meeting
from .outbox import OutgoingMessage
from .versions import AgendaVersion


@dataclass(frozen=True)
class RenderedFeed:
    """Bytes rendered once per published version; served as they are, never re-rendered per request.

    `key` is the feed's path below its meeting: "all", "tracks/<slug>" or "deadlines".
    """

    key: str
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str = "text/calendar; charset=utf-8"


@dataclass(frozen=True)
class VersionSummary:
    number: int
    published_at: datetime
    comment: str
    change_count: int


@dataclass(frozen=True)
class WorkingCopy:
    sessions: tuple[Session, ...]
    deadlines: tuple[Deadline, ...]
    updated_at: datetime | None


class AgendaStore(Protocol):
    async def upsert_meeting(self, meeting: Meeting) -> None: ...

    async def get_meeting(self, meeting_id: MeetingId) -> Meeting:
        """Raises NotFound."""
        ...

    async def list_meetings(self) -> list[Meeting]: ...

    async def replace_working_copy(
        self,
        meeting_id: MeetingId,
        sessions: Sequence[Session],
        deadlines: Sequence[Deadline] | None,
        meeting: Meeting | None = None,
    ) -> None:
        """Atomically replace the working sessions (and deadlines unless None; the meeting if given)."""
        ...

    async def working_copy(self, meeting_id: MeetingId) -> WorkingCopy: ...

    async def latest_version(self, meeting_id: MeetingId) -> AgendaVersion | None: ...

    async def get_version(self, meeting_id: MeetingId, number: int) -> AgendaVersion:
        """Raises NotFound."""
        ...

    async def list_versions(self, meeting_id: MeetingId) -> list[VersionSummary]: ...

    async def save_version(
        self,
        version: AgendaVersion,
        feeds: Mapping[str, RenderedFeed],
        outbox: Sequence[OutgoingMessage] = (),
    ) -> None:
        """Store a version, its rendered feeds and the messages announcing it in one transaction.

        Raises ConcurrentChange when that version number already exists (another publisher won).
        """
        ...

    async def rendered_feeds(self, meeting_id: MeetingId) -> dict[str, RenderedFeed]:
        """The feeds of the latest version ({} when nothing is published)."""
        ...

    async def latest_version_numbers(self) -> dict[MeetingId, int]:
        """Meeting id -> latest published version number: a cheap query for change polling."""
        ...


class ChatStore(Protocol):
    """What the conversation core and the announcers keep about chats."""

    async def get_profile(self, chat: ChatRef) -> ChatProfile | None: ...

    async def save_profile(self, profile: ChatProfile) -> None: ...

    async def profile_by_feed_token(self, token: str) -> ChatProfile | None: ...

    async def subscriptions_of(self, chat: ChatRef) -> list[Subscription]: ...

    async def save_subscription(self, subscription: Subscription) -> None: ...

    async def delete_subscription(self, chat: ChatRef, meeting_id: MeetingId) -> bool: ...

    async def subscribers(self, meeting_id: MeetingId) -> list[tuple[Subscription, ChatProfile]]:
        """Active subscriptions of a meeting with their chats' profiles."""
        ...

    async def enqueue(self, messages: Sequence[OutgoingMessage]) -> int:
        """Store messages in the outbox (rows whose dedup_key exists are skipped); returns how many were new."""
        ...
