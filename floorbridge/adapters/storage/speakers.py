"""SqlSpeakerStore: floorbridge.core.ports.SpeakerStore on SQLite or PostgreSQL.

A list of speakers is one `speaker_lists` row (the list's own fields and its waiting order), one
`speakers` row per speaker and one `queue_audit` row per accepted command. The row's `version` is
the optimistic-concurrency token: a save names the version it started from and only moves the
row from there, so of two processes saving from one version exactly one wins.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Select, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from floorbridge.core.errors import ConcurrentChange
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.speakers import (
    Actor,
    AuditEntry,
    Channel,
    Participant,
    Speaker,
    SpeakerList,
    SpeakerState,
    SpeechType,
)

from .engine import reading, run_write
from .live import FLOOR, notify_in
from .outbox import insert_outbox_rows
from .prepared import Prepared
from .statements import utc_now
from .tables import queue_audit, speaker_lists, speakers

# Every column of `speakers` but the key: what an upsert of a changed speaker overwrites.
_SPEAKER_VALUES = [c.name for c in speakers.columns if c.name not in ("list_id", "speaker_id")]


class SqlSpeakerStore:
    """Every method runs in its own transaction; `save_changes` is all-or-nothing."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def load_list(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList | None:
        query = select(speaker_lists).where(
            speaker_lists.c.meeting_id == meeting_id, speaker_lists.c.session_id == session_id
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            found = await _speakers_of(conn, select(speakers).where(speakers.c.list_id == row.id))
        return _list(row, found.get(row.id, {}))

    async def refresh(self, lst: SpeakerList) -> SpeakerList:
        """The list as stored now, from `lst` (a copy the caller holds at some stored version):
        only the speakers written since that version are read. Another process's commit of a
        2,000-speaker list then costs the caller the few rows it changed, not the whole list."""
        query = select(speaker_lists).where(
            speaker_lists.c.meeting_id == lst.meeting_id, speaker_lists.c.session_id == lst.session_id
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return SpeakerList(lst.meeting_id, lst.session_id)
            if row.version == lst.version:
                return lst
            whole = row.version < lst.version  # older than the copy: not its history; read it whole
            changed = select(speakers).where(speakers.c.list_id == row.id)
            if not whole:
                changed = changed.where(speakers.c.changed_in > lst.version)
            found = (await _speakers_of(conn, changed)).get(row.id, {})
        return _list(row, found if whole else {**lst.speakers, **found})

    async def stored_version(self, meeting_id: MeetingId, session_id: SessionId) -> int | None:
        if self._engine.dialect.name != "postgresql":
            return None  # one process writes the lists (see floorbridge.app.check_role)
        query = select(speaker_lists.c.version).where(speaker_lists.c.meeting_id == meeting_id,
                                                      speaker_lists.c.session_id == session_id)
        async with self._engine.connect() as conn:
            version = (await conn.execute(query)).scalar()
        return int(version) if version is not None else 0

    @asynccontextmanager
    async def exclusive(self, meeting_id: MeetingId, session_id: SessionId) -> AsyncIterator[int | None]:
        """While inside, other processes' commits of this list wait (a PostgreSQL advisory lock on
        a connection of its own); yields the version stored now, so a stale copy is read again
        once rather than retried against a moving target. On SQLite (one process) a no-op."""
        if self._engine.dialect.name != "postgresql":
            yield None
            return
        key = zlib.crc32(f"floorbridge:list:{meeting_id}/{session_id}".encode())
        async with self._engine.connect() as conn:
            await conn.execute(_LOCK, {"key": key})
            try:
                version = (await conn.execute(
                    select(speaker_lists.c.version).where(speaker_lists.c.meeting_id == meeting_id,
                                                          speaker_lists.c.session_id == session_id))).scalar()
                await conn.commit()
                yield int(version) if version is not None else 0
            finally:
                await conn.execute(_UNLOCK, {"key": key})
                await conn.commit()

    async def lists_of(self, meeting_id: MeetingId) -> list[SpeakerList]:
        """Every list of the meeting, by session id."""
        lists_query = (
            select(speaker_lists).where(speaker_lists.c.meeting_id == meeting_id).order_by(speaker_lists.c.session_id)
        )
        speakers_query = (
            select(speakers)
            .join(speaker_lists, speaker_lists.c.id == speakers.c.list_id)
            .where(speaker_lists.c.meeting_id == meeting_id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(lists_query)).all()
            found = await _speakers_of(conn, speakers_query) if rows else {}
        return [_list(row, found.get(row.id, {})) for row in rows]

    async def save_changes(
        self,
        lst: SpeakerList,
        base_version: int,
        audit: Sequence[AuditEntry],
        changed_speaker_ids: Sequence[int],
        messages: Sequence[OutgoingMessage],
    ) -> None:
        missing = sorted({i for i in changed_speaker_ids if i not in lst.speakers})
        if missing:
            raise ValueError(f"speakers {missing} are not in the list of {lst.meeting_id}/{lst.session_id}")
        now = self._clock()
        values = {
            "version": lst.version,
            "closed": lst.closed,
            "seconds_per_speaker": lst.seconds_per_speaker,
            "budgets": dict(lst.budgets),
            "waiting": list(lst.order),
            "current_id": lst.current,
            "last_id": lst.last,
            "next_id": lst.next_id,
            "updated_at": now,
        }
        # dict.fromkeys: each speaker once (PostgreSQL refuses to upsert one row twice in a statement).
        speaker_rows = [lst.speakers[i] for i in dict.fromkeys(changed_speaker_ids)]
        await run_write(self._engine, _save, lst, base_version, values, speaker_rows, list(audit), messages, now,
                        quick=True)

    async def audit_trail(self, meeting_id: MeetingId, session_id: SessionId) -> list[AuditEntry]:
        """The list's audit entries, oldest version first."""
        query = (
            select(queue_audit)
            .join(speaker_lists, speaker_lists.c.id == queue_audit.c.list_id)
            .where(speaker_lists.c.meeting_id == meeting_id, speaker_lists.c.session_id == session_id)
            .order_by(queue_audit.c.version, queue_audit.c.id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_audit(r) for r in rows]


_LOCK = text("SELECT pg_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")


def _save(conn: Connection, lst: SpeakerList, base_version: int, values: dict[str, Any],
          changed: list[Speaker], audit: list[AuditEntry], messages: Sequence[OutgoingMessage], now: datetime) -> None:
    statements = _statements(conn.dialect)
    list_id = _move_version(conn, statements, lst, base_version, values)
    if changed:
        statements.upsert_speakers.execute_many(conn, [_speaker_row(list_id, s, lst.version) for s in changed])
    if audit:
        statements.insert_audit.execute_many(conn, [_audit_row(list_id, e) for e in audit])
    insert_outbox_rows(conn, messages, now)
    if lst.version != base_version:
        notify_in(conn, FLOOR, f"{lst.meeting_id}/{lst.session_id}/{lst.version}")


@dataclass(frozen=True)
class _Statements:
    """The statements of a save, compiled once per kind of database (see prepared.py: through
    SQLAlchemy, the per-execution work cost more than running them, most of a small commit's time)."""

    create_list: Prepared
    move_list: Prepared
    upsert_speakers: Prepared
    insert_audit: Prepared


_LIST_VALUES = [c.name for c in speaker_lists.columns if c.name not in ("id", "meeting_id", "session_id")]
_AUDIT_VALUES = [c.name for c in queue_audit.columns if c.name != "id"]


_compiled: dict[tuple[str, str, str], _Statements] = {}


def _statements(dialect: Dialect) -> _Statements:
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    statements = _compiled.get(key)
    if statements is None:
        statements = _compiled[key] = _compile(dialect)
    return statements


def _compile(dialect: Dialect) -> _Statements:
    kind = postgresql if dialect.name == "postgresql" else sqlite
    create = (kind.insert(speaker_lists)
              .on_conflict_do_nothing(index_elements=["meeting_id", "session_id"])
              .returning(speaker_lists.c.id))
    # The SET clause comes from each execution's values; the WHERE binds are named apart from them.
    move = (update(speaker_lists)
            .where(speaker_lists.c.meeting_id == bindparam("b_meeting"),
                   speaker_lists.c.session_id == bindparam("b_session"),
                   speaker_lists.c.version == bindparam("b_version"))
            .returning(speaker_lists.c.id))
    upsert = kind.insert(speakers)
    upsert = upsert.on_conflict_do_update(index_elements=["list_id", "speaker_id"],
                                          set_={k: upsert.excluded[k] for k in _SPEAKER_VALUES})
    return _Statements(
        create_list=Prepared.compile(create, dialect, ["meeting_id", "session_id", *_LIST_VALUES]),
        move_list=Prepared.compile(move, dialect, _LIST_VALUES),
        upsert_speakers=Prepared.compile(upsert, dialect, ["list_id", "speaker_id", *_SPEAKER_VALUES]),
        insert_audit=Prepared.compile(queue_audit.insert(), dialect, _AUDIT_VALUES),
    )


def _move_version(conn: Connection, statements: _Statements, lst: SpeakerList, base_version: int,
                  values: dict[str, Any]) -> int:
    """Create the list row (base 0) or move it from `base_version`; the row's id, or ConcurrentChange."""
    if base_version == 0:
        created = statements.create_list.execute(
            conn, {"meeting_id": lst.meeting_id, "session_id": lst.session_id, **values})
        if created is not None:
            return int(created[0])
        # The row exists: it may only be moved on if it is still at version 0.
    moved = statements.move_list.execute(
        conn, {"b_meeting": lst.meeting_id, "b_session": lst.session_id, "b_version": base_version, **values})
    if moved is None:
        raise ConcurrentChange(
            f"the list of speakers of {lst.meeting_id}/{lst.session_id} is no longer at version {base_version} "
            f"(someone else changed it first)"
        )
    return int(moved[0])


async def _speakers_of(conn: AsyncConnection, query: Select[Any]) -> dict[int, dict[int, Speaker]]:
    """List id -> speaker id -> speaker, speakers in id order."""
    out: dict[int, dict[int, Speaker]] = {}
    for r in (await conn.execute(query.order_by(speakers.c.list_id, speakers.c.speaker_id))).all():
        out.setdefault(r.list_id, {})[r.speaker_id] = _speaker(r)
    return out


def _speaker_row(list_id: int, s: Speaker, version: int) -> dict[str, Any]:
    p = s.participant
    return {
        "list_id": list_id,
        "changed_in": version,
        "speaker_id": s.id,
        "participant_key": p.key,
        "name": p.name,
        "delegation": p.delegation,
        "channel": p.channel.value,
        "remote": p.remote,
        "notify": p.notify,
        "speech_type": s.speech_type.value,
        "requested_at": s.requested_at,
        "receipt": s.receipt,
        "state": s.state.value,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "paused_at": s.paused_at,
        "paused_seconds": s.paused_seconds,
        "allotted_seconds": s.allotted_seconds,
    }


def _speaker(r: Any) -> Speaker:
    return Speaker(
        id=r.speaker_id,
        participant=Participant(
            key=r.participant_key,
            name=r.name,
            delegation=r.delegation,
            channel=Channel(r.channel),
            remote=bool(r.remote),
            notify=r.notify,
        ),
        speech_type=SpeechType(r.speech_type),
        requested_at=r.requested_at,
        receipt=int(r.receipt),
        state=SpeakerState(r.state),
        started_at=r.started_at,
        ended_at=r.ended_at,
        paused_at=r.paused_at,
        paused_seconds=float(r.paused_seconds),
        allotted_seconds=r.allotted_seconds,
    )


def _list(row: Any, found: dict[int, Speaker]) -> SpeakerList:
    return SpeakerList(
        meeting_id=MeetingId(row.meeting_id),
        session_id=SessionId(row.session_id),
        version=row.version,
        closed=bool(row.closed),
        seconds_per_speaker=row.seconds_per_speaker,
        budgets={str(k): int(v) for k, v in row.budgets.items()},
        speakers=found,
        order=[int(i) for i in row.waiting],
        current=row.current_id,
        last=row.last_id,
        next_id=row.next_id,
    )


def _audit_row(list_id: int, e: AuditEntry) -> dict[str, Any]:
    return {
        "list_id": list_id,
        "version": e.version,
        "at": e.at,
        "actor_key": e.actor.key,
        "actor_name": e.actor.name,
        "channel": e.actor.channel.value,
        "moderator": e.actor.moderator,
        "action": e.action,
        "detail": dict(e.detail),
    }


def _audit(r: Any) -> AuditEntry:
    return AuditEntry(
        version=r.version,
        at=r.at,
        actor=Actor(r.actor_key, r.actor_name, Channel(r.channel), bool(r.moderator)),
        action=r.action,
        detail=dict(r.detail),
    )
