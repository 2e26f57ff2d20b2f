"""Agenda items (sessions) and the checks an agenda must pass before it is accepted."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .deadline import Deadline
from .errors import InvalidInput, Problem
from .ids import SessionId, is_item_id
from .meeting import Meeting


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Document:
    title: str
    url: str


@dataclass(frozen=True)
class Session:
    """One agenda item. `start` and `end` are aware datetimes (stored in UTC)."""

    id: SessionId
    title: str
    start: datetime
    end: datetime
    track: str = ""
    room: str = ""
    remote_url: str = ""
    description: str = ""
    documents: tuple[Document, ...] = ()
    chairs: tuple[str, ...] = ()
    status: SessionStatus = SessionStatus.SCHEDULED

    @property
    def cancelled(self) -> bool:
        return self.status is SessionStatus.CANCELLED


def utc(moment: datetime) -> datetime:
    """Normalise an aware datetime to UTC; refuse naive ones, whose meaning is a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no timezone")
    return moment.astimezone(UTC)


def check_agenda(
    meeting: Meeting,
    sessions: Sequence[Session],
    deadlines: Sequence[Deadline] = (),
    where: Sequence[str] | None = None,
) -> list[Problem]:
    """Raise InvalidInput listing every error; return warnings (room clashes) for the caller to show.

    `where[i]` names the origin of `sessions[i]` (file:line) so errors point at the input.
    """
    errors: list[Problem] = []
    origin = list(where) if where is not None else [f"session {s.id}" for s in sessions]
    seen: dict[str, str] = {}
    for s, at in zip(sessions, origin, strict=True):
        if not is_item_id(s.id):
            errors.append(Problem(at, f"id {s.id!r} must be letters, digits, '.', '_' or '-' (max 128)"))
        if s.id in seen:
            errors.append(Problem(at, f"id {s.id!r} is used twice (first at {seen[s.id]})"))
        else:
            seen[s.id] = at
        if not s.title.strip():
            errors.append(Problem(at, "title must not be empty"))
        if s.end <= s.start:
            errors.append(Problem(at, f"end {_local(meeting, s.end)} is not after start {_local(meeting, s.start)}"))
        for label, moment in (("start", s.start), ("end", s.end)):
            local_day = meeting.local(moment).date()
            if not meeting.start_date <= local_day <= meeting.end_date:
                errors.append(
                    Problem(
                        at,
                        f"{label} {_local(meeting, moment)} is outside the meeting's dates "
                        f"{meeting.start_date}..{meeting.end_date}",
                    )
                )
    deadline_ids: set[str] = set()
    for d in deadlines:
        if not is_item_id(d.id):
            errors.append(Problem(f"deadline {d.id}", "id must be letters, digits, '.', '_' or '-'"))
        if d.id in deadline_ids:
            errors.append(Problem(f"deadline {d.id}", "id is used twice"))
        deadline_ids.add(d.id)
    if errors:
        raise InvalidInput(errors)
    return room_clashes(meeting, sessions)


def room_clashes(meeting: Meeting, sessions: Sequence[Session]) -> list[Problem]:
    """Pairs of live sessions in one room whose times overlap."""
    warnings: list[Problem] = []
    by_room: dict[str, list[Session]] = {}
    for s in sessions:
        if s.room.strip() and not s.cancelled:
            by_room.setdefault(s.room.strip().casefold(), []).append(s)
    for group in by_room.values():
        group.sort(key=lambda s: (s.start, s.end))
        latest: Session | None = None
        for s in group:
            if latest is not None and s.start < latest.end:
                warnings.append(
                    Problem(
                        f"session {s.id}",
                        f"room {s.room!r} is also used by {latest.id} until {_local(meeting, latest.end)}",
                    )
                )
            if latest is None or s.end > latest.end:
                latest = s
    return warnings


def _local(meeting: Meeting, moment: datetime) -> str:
    return meeting.local(moment).strftime("%Y-%m-%d %H:%M %Z")
