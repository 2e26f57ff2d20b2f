"""A running chat side over a real SQLite store holding the published WSIS+20 demo meeting: the
chat runtime with whichever real platform adapters a test gives it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.settings import Settings
from floorbridge.adapters.settings.model import BotSettings, ConsoleSettings, MeetingSettings, StaffSettings
from floorbridge.adapters.sources import load_agenda
from floorbridge.adapters.storage import SqlAgendaStore, SqlChatStore, SqlOutbox, SqlSpeakerStore, open_store
from floorbridge.calendar.feeds import render_feeds
from floorbridge.core import usecases
from floorbridge.core.chats import ChatProfile, ChatRef, NoticeKind, Subscription
from floorbridge.core.ids import MeetingId
from floorbridge.core.versions import AgendaVersion
from tests.support import Clock, publish_wsis

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
NOW = datetime(2025, 7, 9, 8, 30, tzinfo=UTC)



def settings(moderators: tuple[str, ...] = (), chats: tuple[str, ...] = ()) -> Settings:
    return Settings(
        meetings=MeetingSettings(seed=(), staff={"wsis-2025": StaffSettings(moderators=moderators, chats=chats)}),
        bots=BotSettings(delivery_poll_seconds=0.2, reminder_check_seconds=3600),
        console=ConsoleSettings(floor_tick_seconds=0.05),
    )


def moved_agenda(tmp: Path, minutes: str = "30", *, cancel_workshop: bool = False) -> Path:
    """The demo agenda with the high-level segment's opening moved from 09:00 to 09:<minutes>
    (and the tentative gender workshop cancelled)."""
    text = (ROOT / "config/meetings/wsis-2025.yaml").read_text(encoding="utf-8")
    text = text.replace('''    date: 2025-07-09
    start: "09:00"
    end: "10:30"
    track: High-Level Segment''', f'''    date: 2025-07-09
    start: "09:{minutes}"
    end: "10:30"
    track: High-Level Segment''', 1)
    if cancel_workshop:
        text = text.replace("    room: Room C\n    status: tentative", "    room: Room C\n    status: cancelled", 1)
    path = tmp / f"wsis-2025-{minutes}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Stage:
    store: SqlAgendaStore
    chats: SqlChatStore
    outbox: SqlOutbox
    tmp: Path
    speakers: SqlSpeakerStore
    clock: Clock

    def runtime(self, config: Settings | None = None) -> ChatRuntime:
        return ChatRuntime(self.store, self.chats, self.outbox, config or settings(), clock=self.clock,
                           speakers=self.speakers)

    async def subscribe(self, chat: ChatRef, *, group: bool = False, tracks: frozenset[str] = frozenset()) -> None:
        await self.chats.save_profile(ChatProfile(chat, is_group=group, meeting_id=WSIS, started=True))
        await self.chats.save_subscription(Subscription(chat, WSIS, tracks, frozenset(NoticeKind)))

    async def publish_change(self, runtime: ChatRuntime, minutes: str = "30") -> AgendaVersion:
        path = moved_agenda(self.tmp, minutes)
        imported = load_agenda(path, await self.store.get_meeting(WSIS))
        await usecases.import_agenda(self.store, WSIS, defined_meeting=imported.meeting,
                                     sessions=imported.sessions, deadlines=imported.deadlines, source=str(path))
        version = await usecases.publish_agenda(
            self.store, WSIS, lambda m, v: render_feeds(m, v, base_url=""), now=NOW, announce=runtime.announce
        )
        runtime.engine.notify()
        return version


async def open_stage(tmp: Path, url: str | None = None) -> Stage:
    store = await open_store(url or f"sqlite+aiosqlite:///{tmp}/fb.db")
    await publish_wsis(store, now=NOW)
    return Stage(store, SqlChatStore(store.engine), SqlOutbox(store.engine), tmp, SqlSpeakerStore(store.engine),
                 Clock(NOW))


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    s = await open_stage(tmp_path)
    try:
        yield s
    finally:
        await s.store.close()


async def eventually(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)
