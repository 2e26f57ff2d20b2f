"""SqlAgendaStore: floorbridge.core.ports.AgendaStore on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from floorbridge.core.agenda import Session
from floorbridge.core.codec import (
    changeset_from_dict,
    changeset_to_dict,
    deadline_from_dict,
    deadline_to_dict,
    meeting_from_dict,
    meeting_to_dict,
    session_from_dict,
    session_to_dict,
)
from floorbridge.core.deadline import Deadline
from floorbridge.core.errors import ConcurrentChange, FloorbridgeError, InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import RenderedFeed, VersionSummary, WorkingCopy
from floorbridge.core.versions import AgendaVersion, PublishedSession

from .engine import create_engine, reading, writing
from .migrate import current_revision_of, head_revision, upgrade_engine
from .outbox import insert_outbox
from .statements import upsert as _upsert
from .statements import utc_now as _utc_now
from .tables import (
    meetings,
    rendered_feeds,
    version_deadlines,
    version_sessions,
    versions,
    working_copy_meta,
    working_deadlines,
    working_sessions,
)

T = TypeVar("T")


class SchemaOutOfDate(FloorbridgeError):
    """The database has not been migrated to the revision this code needs."""


log = logging.getLogger("floorbridge.storage")

class SqlAgendaStore:
    """Every method runs in its own transaction; the writers are all-or-nothing."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utc_now,
                 cache_seconds: float = 1.0) -> None:
        self._engine = engine
        self._clock = clock
        # Every chat command and floor request reads its meeting and latest agenda version. Both are
        # kept in memory: meetings for `cache_seconds`, and the latest version re-checked after that
        # with one small query (its number and time; a version never changes once published). What
        # this store writes itself is seen at once; what another process writes within `cache_seconds`.
        self._cache_seconds = cache_seconds
        self._latest: dict[MeetingId, tuple[int, datetime, AgendaVersion, float]] = {}
        self._meetings: tuple[float, dict[MeetingId, Meeting]] | None = None
        # One refresh at a time: when the copy expires during a burst, the callers wait for one query
        # instead of each sending their own. And they wait only for a copy they never had: an expired
        # one is answered at once while the refresh runs in the background. Each step of that query
        # waits for a turn of a busy loop, and a burst of floor requests queued behind it (the first
        # web acknowledgements of a burst waited up to 600 ms).
        self._refreshing = asyncio.Lock()
        self._refreshes: dict[object, asyncio.Task[object]] = {}
        # Moved on by every write here: a refresh that began before it does not keep what it read.
        self._generation = 0

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        for task in self._refreshes.values():
            task.cancel()
        await asyncio.gather(*self._refreshes.values(), return_exceptions=True)
        self._refreshes.clear()
        await self._engine.dispose()

    async def __aenter__(self) -> SqlAgendaStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # meetings

    def _forget(self) -> None:
        self._generation += 1
        self._meetings = None
        self._latest.clear()

    def _refresh_soon(self, key: object, load: Callable[[], Awaitable[object]]) -> None:
        """Refresh an expired copy in the background, once at a time per `key`."""
        running = self._refreshes.get(key)
        if running is not None and not running.done():
            return

        async def refresh() -> object:
            async with self._refreshing:
                try:
                    return await load()
                except Exception:
                    log.warning("refreshing the agenda cache failed; the next use tries again", exc_info=True)
                    return None

        self._refreshes[key] = asyncio.create_task(refresh(), name=f"agenda-refresh-{key}")

    async def upsert_meeting(self, meeting: Meeting) -> None:
        async with writing(self._engine) as conn:
            await _put_meeting(conn, meeting, self._clock())
        self._forget()

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at < self._cache_seconds

    async def _all_meetings(self) -> dict[MeetingId, Meeting]:
        cached = self._meetings
        if cached is not None:
            if not self._fresh(cached[0]):
                self._refresh_soon("meetings", self._load_meetings)
            return cached[1]
        async with self._refreshing:
            cached = self._meetings
            if cached is not None:
                return cached[1]
            return await self._load_meetings()

    async def _load_meetings(self) -> dict[MeetingId, Meeting]:
        generation = self._generation
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(meetings.c.data))).scalars().all()
        found = {m.id: m for m in sorted((meeting_from_dict(d) for d in rows), key=lambda m: (m.start_date, m.id))}
        if generation == self._generation:
            self._meetings = (time.monotonic(), found)
        return found

    async def get_meeting(self, meeting_id: MeetingId) -> Meeting:
        meeting = (await self._all_meetings()).get(meeting_id)
        if meeting is None:
            raise NotFound(f"meeting {meeting_id!r} does not exist")
        return meeting

    async def list_meetings(self) -> list[Meeting]:
        """All meetings, earliest first (then by id)."""
        return list((await self._all_meetings()).values())

    # working copy

    async def _replace_working_copy(
        self,
        meeting_id: MeetingId,
        sessions: Sequence[Session],
        deadlines: Sequence[Deadline] | None,
        meeting: Meeting | None = None,
    ) -> None:
        problems: list[Problem] = []
        if meeting is not None and meeting.id != meeting_id:
            problems.append(Problem("meeting.id", f"{meeting.id!r} is not the working copy's meeting {meeting_id!r}"))
        sessions = [_in_utc(s, f"session {s.id}", problems) for s in sessions]
        if deadlines is not None:
            deadlines = [_in_utc(d, f"deadline {d.id}", problems) for d in deadlines]
        if problems:
            raise InvalidInput(problems)
        session_rows = [
            {"meeting_id": meeting_id, "session_id": s.id, "position": i, "data": session_to_dict(s)}
            for i, s in enumerate(sessions)
        ]
        deadline_rows = [
            {"meeting_id": meeting_id, "deadline_id": d.id, "position": i, "data": deadline_to_dict(d)}
            for i, d in enumerate(deadlines or ())
        ]
        now = self._clock()
        try:
            async with writing(self._engine) as conn:
                if meeting is not None:
                    await _put_meeting(conn, meeting, now)
                else:
                    await _require_meeting(conn, meeting_id)
                await conn.execute(delete(working_sessions).where(working_sessions.c.meeting_id == meeting_id))
                if session_rows:
                    await conn.execute(insert(working_sessions), session_rows)
                if deadlines is not None:
                    await conn.execute(delete(working_deadlines).where(working_deadlines.c.meeting_id == meeting_id))
                    if deadline_rows:
                        await conn.execute(insert(working_deadlines), deadline_rows)
                await _upsert(conn, working_copy_meta, {"meeting_id": meeting_id, "updated_at": now}, ["meeting_id"])
        except IntegrityError as exc:
            twice = _used_twice("session", (s.id for s in sessions)) + _used_twice(
                "deadline", (d.id for d in deadlines or ())
            )
            if twice:
                raise InvalidInput(twice, source=f"working copy of {meeting_id}") from exc
            raise

    async def working_copy(self, meeting_id: MeetingId) -> WorkingCopy:
        """The working copy; empty with updated_at None when it was never written (or no such meeting)."""
        async with reading(self._engine) as conn:
            updated_at = (
                await conn.execute(
                    select(working_copy_meta.c.updated_at).where(working_copy_meta.c.meeting_id == meeting_id)
                )
            ).scalar()
            session_data = await _ordered_data(conn, working_sessions, meeting_id)
            deadline_data = await _ordered_data(conn, working_deadlines, meeting_id)
        return WorkingCopy(
            sessions=tuple(session_from_dict(d) for d in session_data),
            deadlines=tuple(deadline_from_dict(d) for d in deadline_data),
            updated_at=updated_at,
        )

    # versions

    async def latest_version(self, meeting_id: MeetingId) -> AgendaVersion | None:
        cached = self._latest.get(meeting_id)
        if cached is not None:
            if not self._fresh(cached[3]):
                self._refresh_soon(("latest", meeting_id), lambda: self._load_latest(meeting_id))
            return cached[2]
        async with self._refreshing:
            cached = self._latest.get(meeting_id)
            if cached is not None:
                return cached[2]
            return await self._load_latest(meeting_id)

    async def _load_latest(self, meeting_id: MeetingId) -> AgendaVersion | None:
        generation = self._generation
        cached = self._latest.get(meeting_id)
        latest = (
            select(versions.c.number, versions.c.published_at)
            .where(versions.c.meeting_id == meeting_id)
            .order_by(versions.c.number.desc())
            .limit(1)
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(latest)).first()
            if row is None:
                if generation == self._generation:
                    self._latest.pop(meeting_id, None)
                return None
            if cached is not None and cached[:2] == (row.number, row.published_at):
                if generation == self._generation:
                    self._latest[meeting_id] = (*cached[:3], time.monotonic())
                return cached[2]
            version = await _load_version(conn, meeting_id, row.number)
        if version is not None and generation == self._generation:
            self._latest[meeting_id] = (row.number, row.published_at, version, time.monotonic())
        return version

    async def get_version(self, meeting_id: MeetingId, number: int) -> AgendaVersion:
        async with reading(self._engine) as conn:
            version = await _load_version(conn, meeting_id, number)
            if version is None:
                if await _meeting_exists(conn, meeting_id):
                    raise NotFound(f"meeting {meeting_id!r} has no version {number}")
                raise NotFound(f"meeting {meeting_id!r} does not exist (asked for its version {number})")
        return version

    async def list_versions(self, meeting_id: MeetingId) -> list[VersionSummary]:
        """Summaries of every published version, oldest (version 1) first."""
        query = (
            select(versions.c.number, versions.c.published_at, versions.c.comment, versions.c.change_count)
            .where(versions.c.meeting_id == meeting_id)
            .order_by(versions.c.number)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [VersionSummary(r.number, r.published_at, r.comment, r.change_count) for r in rows]

    async def _save_version(
        self,
        version: AgendaVersion,
        feeds: Mapping[str, RenderedFeed],
        outbox: Sequence[OutgoingMessage] = (),
    ) -> None:
        problems: list[Problem] = []
        version = _in_utc(version, f"version {version.number}", problems)
        for key, feed in feeds.items():
            if feed.key != key:
                problems.append(Problem(f"feeds[{key!r}]", f"holds the feed keyed {feed.key!r}"))
        feeds = {k: _in_utc(f, f"feed {k}", problems) for k, f in feeds.items()}
        if problems:
            raise InvalidInput(problems)
        mid, number = version.meeting_id, version.number
        async with writing(self._engine) as conn:
            await _require_meeting(conn, mid)
            try:
                await conn.execute(
                    insert(versions).values(
                        meeting_id=mid,
                        number=number,
                        published_at=version.published_at,
                        comment=version.comment,
                        change_count=len(version.changes),
                        changes=changeset_to_dict(version.changes),
                    )
                )
            except IntegrityError as exc:
                raise ConcurrentChange(
                    f"meeting {mid!r}: version {number} already exists (published by someone else first)"
                ) from exc
            await insert_outbox(conn, outbox, self._clock())
            try:
                await _insert_version_rows(conn, version, feeds)
            except IntegrityError as exc:
                twice = _used_twice("session", (p.session.id for p in version.sessions)) + _used_twice(
                    "deadline", (d.id for d in version.deadlines)
                )
                if twice:
                    raise InvalidInput(twice, source=f"version {number} of {mid}") from exc
                raise

    async def replace_working_copy(
        self,
        meeting_id: MeetingId,
        sessions: Sequence[Session],
        deadlines: Sequence[Deadline] | None,
        meeting: Meeting | None = None,
    ) -> None:
        try:
            await self._replace_working_copy(meeting_id, sessions, deadlines, meeting)
        finally:
            self._forget()

    async def save_version(
        self,
        version: AgendaVersion,
        feeds: Mapping[str, RenderedFeed],
        outbox: Sequence[OutgoingMessage] = (),
    ) -> None:
        try:
            await self._save_version(version, feeds, outbox)
        finally:
            self._forget()

    async def rendered_feeds(self, meeting_id: MeetingId) -> dict[str, RenderedFeed]:
        latest = select(func.max(versions.c.number)).where(versions.c.meeting_id == meeting_id).scalar_subquery()
        query = select(rendered_feeds).where(
            rendered_feeds.c.meeting_id == meeting_id, rendered_feeds.c.number == latest
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return {
            r.key: RenderedFeed(r.key, bytes(r.body), bytes(r.gzipped), r.etag, r.last_modified, r.content_type)
            for r in sorted(rows, key=lambda r: r.key)
        }

    async def latest_version_numbers(self) -> dict[MeetingId, int]:
        query = select(versions.c.meeting_id, func.max(versions.c.number)).group_by(versions.c.meeting_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {MeetingId(meeting_id): int(number) for meeting_id, number in rows}


async def open_store(
    url: str,
    *,
    migrate: bool = True,
    clock: Callable[[], datetime] = _utc_now,
    echo: bool = False,
    pool_size: int = 5,
) -> SqlAgendaStore:
    """A store on `url`, migrated to head first unless `migrate` is False (then the schema must be current)."""
    engine = create_engine(url, echo=echo, pool_size=pool_size)
    try:
        if migrate:
            await upgrade_engine(engine)
        else:
            async with engine.connect() as conn:
                current = await conn.run_sync(current_revision_of)
            if current != head_revision():
                raise SchemaOutOfDate(
                    f"database {engine.url.render_as_string(hide_password=True)} is at revision {current}, "
                    f"this code needs {head_revision()}: run the migrations"
                )
    except BaseException:
        await engine.dispose()
        raise
    return SqlAgendaStore(engine, clock=clock)


# helpers


def _in_utc(obj: T, where: str, problems: list[Problem]) -> T:
    """`obj` with every datetime in it (dataclasses and tuples, recursively) converted to UTC.

    Naive datetimes are reported in `problems`: their meaning would be a guess.
    """
    if isinstance(obj, datetime):
        if obj.tzinfo is None or obj.utcoffset() is None:
            problems.append(Problem(where, f"{obj.isoformat()} has no timezone"))
            return obj
        return cast(T, obj.astimezone(UTC))
    if is_dataclass(obj) and not isinstance(obj, type):
        changed: dict[str, Any] = {}
        for f in fields(obj):
            before = getattr(obj, f.name)
            after = _in_utc(before, f"{where}.{f.name}", problems)
            if after is not before:
                changed[f.name] = after
        return replace(obj, **changed) if changed else obj
    if isinstance(obj, tuple):
        items = [_in_utc(x, f"{where}[{i}]", problems) for i, x in enumerate(obj)]
        if any(a is not b for a, b in zip(items, obj, strict=True)):
            return cast(T, tuple(items))
    return obj


def _used_twice(kind: str, ids: Iterable[str]) -> list[Problem]:
    return [Problem(f"{kind} {i}", "id is used twice") for i, n in Counter(ids).items() if n > 1]


async def _put_meeting(conn: AsyncConnection, meeting: Meeting, now: datetime) -> None:
    await _upsert(conn, meetings, {"id": meeting.id, "data": meeting_to_dict(meeting), "updated_at": now}, ["id"])


async def _meeting_exists(conn: AsyncConnection, meeting_id: MeetingId) -> bool:
    found = (await conn.execute(select(meetings.c.id).where(meetings.c.id == meeting_id))).scalar()
    return found is not None


async def _require_meeting(conn: AsyncConnection, meeting_id: MeetingId) -> None:
    if not await _meeting_exists(conn, meeting_id):
        raise NotFound(f"meeting {meeting_id!r} does not exist")


async def _ordered_data(conn: AsyncConnection, table: Table, meeting_id: MeetingId) -> list[Any]:
    query = select(table.c.data).where(table.c.meeting_id == meeting_id).order_by(table.c.position)
    return list((await conn.execute(query)).scalars().all())


async def _insert_version_rows(
    conn: AsyncConnection, version: AgendaVersion, feeds: Mapping[str, RenderedFeed]
) -> None:
    key = {"meeting_id": version.meeting_id, "number": version.number}
    if version.sessions:
        await conn.execute(
            insert(version_sessions),
            [
                {
                    **key,
                    "session_id": p.session.id,
                    "position": i,
                    "sequence": p.sequence,
                    "last_modified": p.last_modified,
                    "data": session_to_dict(p.session),
                }
                for i, p in enumerate(version.sessions)
            ],
        )
    if version.deadlines:
        await conn.execute(
            insert(version_deadlines),
            [
                {**key, "deadline_id": d.id, "position": i, "data": deadline_to_dict(d)}
                for i, d in enumerate(version.deadlines)
            ],
        )
    if feeds:
        await conn.execute(
            insert(rendered_feeds),
            [
                {
                    **key,
                    "key": k,
                    "body": f.body,
                    "gzipped": f.gzipped,
                    "etag": f.etag,
                    "last_modified": f.last_modified,
                    "content_type": f.content_type,
                }
                for k, f in feeds.items()
            ],
        )


async def _load_version(conn: AsyncConnection, meeting_id: MeetingId, number: int) -> AgendaVersion | None:
    row = (
        await conn.execute(select(versions).where(versions.c.meeting_id == meeting_id, versions.c.number == number))
    ).first()
    if row is None:
        return None
    sessions = (
        await conn.execute(
            select(version_sessions.c.data, version_sessions.c.sequence, version_sessions.c.last_modified)
            .where(version_sessions.c.meeting_id == meeting_id, version_sessions.c.number == number)
            .order_by(version_sessions.c.position)
        )
    ).all()
    deadlines = (
        await conn.execute(
            select(version_deadlines.c.data)
            .where(version_deadlines.c.meeting_id == meeting_id, version_deadlines.c.number == number)
            .order_by(version_deadlines.c.position)
        )
    ).scalars()
    return AgendaVersion(
        meeting_id=meeting_id,
        number=number,
        published_at=row.published_at,
        comment=row.comment,
        sessions=tuple(PublishedSession(session_from_dict(s.data), s.sequence, s.last_modified) for s in sessions),
        deadlines=tuple(deadline_from_dict(d) for d in deadlines),
        changes=changeset_from_dict(row.changes),
    )
