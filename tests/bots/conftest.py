"""A conversation over a real SQLite store holding the published WSIS+20 demo meeting, with the
clock stopped on Wednesday 9 July 2025, 10:30 in Geneva (the high-level segment's first day)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.adapters.storage import SqlAgendaStore, SqlChatStore, SqlOutbox, open_store
from floorbridge.bots.conversation import Conversation
from floorbridge.bots.events import Incoming, Reply
from floorbridge.calendar.feeds import render_feeds
from floorbridge.core import usecases
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, Role, Staff, UserRef
from floorbridge.core.ids import MeetingId

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
NOW = datetime(2025, 7, 9, 8, 30, tzinfo=UTC)  # 10:30 in Geneva
MODERATOR = UserRef(Platform.TELEGRAM, "42")
DELEGATE = UserRef(Platform.TELEGRAM, "1001")
PRIVATE = ChatRef(Platform.TELEGRAM, "1001")
GROUP = ChatRef(Platform.TELEGRAM, "-100777")


@dataclass
class World:
    store: SqlAgendaStore
    chats: SqlChatStore
    outbox: SqlOutbox
    conversation: Conversation
    pins: list[tuple[ChatProfile, MeetingId]] = field(default_factory=list)
    clock: list[datetime] = field(default_factory=lambda: [NOW])

    async def ask(
        self, text: str, *, chat: ChatRef = PRIVATE, user: UserRef = DELEGATE, group: bool = False,
        hint: str | None = None,
    ) -> list[Reply]:
        return await self.conversation.handle(Incoming(chat, user, text, is_group=group, language_hint=hint))

    async def text(self, text: str, **kwargs: object) -> str:
        replies = await self.ask(text, **kwargs)  # type: ignore[arg-type]
        return "\n\n".join(r.message.plain() for r in replies)

    async def publish(self, path: Path) -> None:
        imported = load_agenda(path, await self.store.get_meeting(WSIS))
        await usecases.import_agenda(self.store, WSIS, defined_meeting=imported.meeting,
                                     sessions=imported.sessions, deadlines=imported.deadlines, source=str(path))
        await usecases.publish_agenda(self.store, WSIS, lambda m, v: render_feeds(m, v, base_url=""),
                                      now=self.clock[0])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/fb.db")
    path = ROOT / "config/meetings/wsis-2025.yaml"
    imported = load_agenda(path, None)
    assert imported.meeting is not None
    await usecases.import_agenda(store, WSIS, defined_meeting=imported.meeting, sessions=imported.sessions,
                                 deadlines=imported.deadlines, source=str(path))
    await usecases.publish_agenda(store, WSIS, lambda m, v: render_feeds(m, v, base_url=""), now=NOW)
    chats = SqlChatStore(store.engine)
    staff = Staff({WSIS: {MODERATOR: Role.MODERATOR}})
    holder: list[World] = []

    async def on_pin(profile: ChatProfile, meeting_id: MeetingId) -> None:
        holder[0].pins.append((profile, meeting_id))

    clock = [NOW]
    conversation = Conversation(store, chats, staff, public_url="https://fb.example.org",
                                clock=lambda: clock[0], on_pin_request=on_pin)
    w = World(store, chats, SqlOutbox(store.engine), conversation, clock=clock)
    holder.append(w)
    try:
        yield w
    finally:
        await store.close()
