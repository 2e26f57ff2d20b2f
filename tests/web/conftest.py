from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from floorbridge.adapters.storage import SqlAgendaStore, open_store
from floorbridge.adapters.web.fastpath import IDLE_SECONDS, FastPathSite
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.calendar.feeds import render_feeds
from floorbridge.core import usecases
from floorbridge.core.agenda import Session
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.ids import DeadlineId, MeetingId, SessionId
from floorbridge.core.meeting import Meeting, RemoteParticipation
from floorbridge.core.versions import AgendaVersion

PUBLIC = "https://bridge.example.org"


def meeting() -> Meeting:
    return Meeting(
        id=MeetingId("fg-dlt-1"),
        title="ITU-T FG DLT, first meeting <script>alert(1)</script>",
        organiser="ITU-T",
        timezone="Europe/Zurich",
        start_date=date(2017, 10, 17),
        end_date=date(2017, 10, 19),
        venue="ITU headquarters, Montbrillant building",
        city="Geneva",
        remote=RemoteParticipation(url="https://remote.example.org/fgdlt"),
    )


def session(sid: str, day: int, start: str, end: str, **kw: object) -> Session:
    m = meeting()
    h1, m1 = map(int, start.split(":"))
    h2, m2 = map(int, end.split(":"))
    return Session(
        id=SessionId(sid),
        title=str(kw.pop("title", f"Session {sid}")),
        start=m.localize(date(2017, 10, day), time(h1, m1)),
        end=m.localize(date(2017, 10, day), time(h2, m2)),
        **kw,  # type: ignore[arg-type]
    )


V1 = [
    session("opening", 17, "09:30", "10:00", room="Popov", track="Plenary"),
    session("structure", 17, "10:00", "12:30", room="Popov", track="Plenary"),
    session("usecases", 18, "09:30", "12:30", room="K", track="Working Group 1"),
]
DEADLINES = [Deadline(DeadlineId("visa"), DeadlineKind.VISA_SUPPORT, "Visa support requests", date(2017, 9, 17))]


@dataclass
class Served:
    store: SqlAgendaStore
    snapshots: Snapshots
    client: TestClient
    db: Path

    async def publish(self, sessions: list[Session], when: datetime) -> AgendaVersion:
        await self.store.replace_working_copy(meeting().id, sessions, DEADLINES)
        version = await usecases.publish_agenda(self.store, meeting().id, render, now=when)
        await self.snapshots.refresh()
        return version


def render(m: Meeting, v: AgendaVersion):  # type: ignore[no-untyped-def]
    return render_feeds(m, v, base_url=PUBLIC)


class FastPathTestServer(TestServer):
    """aiohttp's TestServer, listening through the feed fast path as `run.py serve` does."""

    def __init__(self, app: web.Application, snapshots: Snapshots, idle_seconds: float = IDLE_SECONDS) -> None:
        super().__init__(app, host="127.0.0.1")
        self.snapshots = snapshots
        self.idle_seconds = idle_seconds
        self.site: FastPathSite | None = None

    async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        if self.runner:
            return
        self.runner = await self._make_runner(handler_cancellation=True, **kwargs)
        await self.runner.setup()
        self.site = FastPathSite(self.runner, self.snapshots, "127.0.0.1", 0, idle_seconds=self.idle_seconds)
        await self.site.start()
        self.port = self.site.port
        self.scheme = "http"
        self._root = URL(f"http://127.0.0.1:{self.port}")


@pytest.fixture(params=["aiohttp", "fast-path"])
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/web.db", migrate=True)
    await usecases.import_agenda(store, meeting().id, defined_meeting=meeting(), sessions=V1, deadlines=DEADLINES,
                                 source="test")
    await usecases.publish_agenda(store, meeting().id, render, now=datetime(2017, 9, 1, 8, 0, tzinfo=UTC))
    snapshots = Snapshots(store, poll_seconds=3600)
    await snapshots.start()
    app = create_app(snapshots, WebOptions(PUBLIC))
    server = TestServer(app) if request.param == "aiohttp" else FastPathTestServer(app, snapshots)
    client = TestClient(server)
    await client.start_server()
    try:
        yield Served(store, snapshots, client, tmp_path / "web.db")
    finally:
        await client.close()
        await snapshots.stop()
        await store.close()
