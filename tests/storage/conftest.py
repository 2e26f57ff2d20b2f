"""Fixtures: every storage test runs on SQLite (a file per test) and on PostgreSQL (a database per run).

PostgreSQL must be reachable at 127.0.0.1:5432 (user postgres, trust auth); when it is not, the
PostgreSQL tests fail, unless FLOORBRIDGE_SKIP_POSTGRES=1 is set.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from floorbridge.adapters.storage import SqlAgendaStore, open_store
from floorbridge.core.agenda import Document, Session, SessionStatus
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.ids import DeadlineId, MeetingId, SessionId
from floorbridge.core.meeting import Contact, Meeting, PracticalInfo, RemoteParticipation
from floorbridge.core.ports import AgendaStore, RenderedFeed
from floorbridge.core.versions import AgendaVersion

PG_HOST = os.environ.get("FLOORBRIDGE_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:5432/test"
TABLES = (
    "mail_messages",
    "chat_threads",
    "queue_audit",
    "speakers",
    "speaker_lists",
    "slot_requests",
    "slot_calls",
    "login_links",
    "console_sessions",
    "console_accounts",
    "pinned_messages",
    "outbox",
    "subscriptions",
    "chats",
    "rendered_feeds",
    "version_deadlines",
    "version_sessions",
    "versions",
    "working_deadlines",
    "working_sessions",
    "working_copy_meta",
    "meetings",
)


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{database}"


async def create_pg_database() -> str:
    name = f"fb_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _ping() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    await conn.close()


@pytest.fixture(scope="session")
def postgres_available() -> None:
    try:
        asyncio.run(_ping())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("FLOORBRIDGE_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable ({exc}) and FLOORBRIDGE_SKIP_POSTGRES=1")
        pytest.fail(
            f"PostgreSQL at {PG_HOST}:5432 (user postgres, database test) is unreachable: {exc!r}. "
            "Start it, or set FLOORBRIDGE_SKIP_POSTGRES=1 to skip the PostgreSQL storage tests.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def shared_pg_url(postgres_available: None) -> Iterator[str]:
    """One migrated database for this run (tables are emptied before each test); dropped at the end."""
    name = asyncio.run(create_pg_database())
    try:
        yield pg_url(name)
    finally:
        asyncio.run(drop_pg_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("postgres_available")
    return str(request.param)


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database nobody has migrated yet (for SQLite, in a directory that does not exist yet)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'floorbridge.db'}"
        return
    name = await create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


@pytest.fixture
def pg_run_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    # Resolved here, in a sync fixture: the session database is made outside any running loop.
    return str(request.getfixturevalue("shared_pg_url")) if backend == "postgresql" else None


@pytest.fixture
async def store_url(pg_run_url: str | None, tmp_path: Path) -> str:
    """A migrated, empty database."""
    if pg_run_url is None:
        return f"sqlite+aiosqlite:///{tmp_path / 'floorbridge.db'}"
    url = pg_run_url
    async with await open_store(url) as store, store.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    return url


class Clock:
    """A settable clock, so stored timestamps can be asserted exactly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 9, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[SqlAgendaStore]:
    async with await open_store(store_url, clock=clock) as s:
        as_port: AgendaStore = s  # mypy checks SqlAgendaStore against the Protocol here
        assert as_port is s
        yield s


# sample data: an ITU focus group meeting in Geneva


def geneva_meeting(**changes: object) -> Meeting:
    base: dict[str, object] = {
        "id": MeetingId("fg-ai4h-12"),
        "title": "ITU-T Focus Group on AI for Health, 12th meeting",
        "organiser": "ITU",
        "timezone": "Europe/Zurich",
        "start_date": date(2025, 10, 6),
        "end_date": date(2025, 10, 8),
        "venue": "ITU headquarters, Montbrillant building",
        "city": "Geneva",
        "country": "CH",
        "languages": ("en", "fr", "ru"),
        "url": "https://www.itu.int/go/fgai4h",
        "remote": RemoteParticipation(url="https://itu.zoom.us/j/123", platform="Zoom", instructions="Use MyWorkspace"),
        "practical": PracticalInfo(
            registration_desk="Montbrillant entrance",
            wifi_ssid="ITU-Guest",
            contacts=(Contact("Секретариат TSB", "secretariat", "tsbfgai4h@itu.int"),),
            notes=("Badges are printed on site.",),
        ),
    }
    base.update(changes)
    return Meeting(**base)  # type: ignore[arg-type]


MEETING = geneva_meeting()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Geneva on October `day`, 2025 (aware, Europe/Zurich via pytz)."""
    return MEETING.localize(date(2025, 10, day), time(hour, minute))


def sample_sessions() -> list[Session]:
    return [
        Session(
            SessionId("opening"),
            "Opening plenary",
            at(6, 9, 30),
            at(6, 10, 0),
            track="Plenary",
            room="Popov",
            remote_url="https://itu.zoom.us/j/123",
            chairs=("Chair A",),
        ),
        Session(
            SessionId("wg-data-1"),
            "WG Data: annotation guidelines",
            at(6, 10, 0),
            at(6, 12, 30),
            track="WG Data",
            room="K",
            description="Review of FGAI4H-M-012",
            documents=(Document("FGAI4H-M-012", "https://www.itu.int/md/T22-SG-C-0012"),),
            chairs=("Chair B", "Chair C"),
        ),
        Session(
            SessionId("wg-clin-1"),
            "WG Clinical evaluation",
            at(7, 14, 30),
            at(7, 17, 30),
            track="WG Clinical",
            room="Popov",
            status=SessionStatus.TENTATIVE,
        ),
    ]


def sample_deadlines() -> list[Deadline]:
    return [
        Deadline(DeadlineId("registration"), DeadlineKind.REGISTRATION, "Registration closes", date(2025, 9, 22)),
        Deadline(
            DeadlineId("contributions"),
            DeadlineKind.CONTRIBUTIONS,
            "Contributions due",
            MEETING.localize(date(2025, 9, 29), time(23, 59)),
            source="TSB Circular 123",
            url="https://www.itu.int/md/circ123",
        ),
    ]


def feeds_for(version: AgendaVersion) -> dict[str, RenderedFeed]:
    """Feed bytes that name their version, so a test can tell which version's feeds came back."""
    keys = ["all", "deadlines", *(f"tracks/{slug}" for slug in version.tracks())]
    out: dict[str, RenderedFeed] = {}
    for key in keys:
        body = f"BEGIN:VCALENDAR\r\nX-VERSION:{version.number}\r\nX-FEED:{key}\r\nEND:VCALENDAR\r\n".encode()
        out[key] = RenderedFeed(
            key=key,
            body=body,
            gzipped=gzip.compress(body, mtime=0),
            etag=f'"{version.meeting_id}-{version.number}-{key}"',
            last_modified=version.published_at,
        )
    return out


def in_utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
