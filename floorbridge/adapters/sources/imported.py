"""What every agenda reader returns, and the checks they all finish with."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from floorbridge.core.agenda import Session, check_agenda
from floorbridge.core.deadline import Deadline
from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.meeting import Meeting


@dataclass(frozen=True)
class ImportedAgenda:
    """An agenda file, parsed and checked. Nothing has been stored."""

    meeting: Meeting | None
    sessions: tuple[Session, ...]
    origins: tuple[str, ...]
    deadlines: tuple[Deadline, ...] | None
    warnings: tuple[Problem, ...]


@dataclass
class ProblemLog:
    """Problems found in one file, kept with their line so they can be listed in file order."""

    file: str
    source: str
    _items: list[tuple[int, int, Problem]] = field(default_factory=list)

    def add(self, line: int | None, what: str) -> None:
        where = f"{self.file}:{line}" if line is not None else self.file
        self.add_problem(line, Problem(where, what))

    def add_problem(self, line: int | None, problem: Problem) -> None:
        self._items.append((line or 0, len(self._items), problem))

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def problems(self) -> list[Problem]:
        return [p for _, _, p in sorted(self._items, key=lambda item: (item[0], item[1]))]

    def error(self) -> InvalidInput:
        return InvalidInput(self.problems, source=self.source)


@dataclass(frozen=True)
class Parsed:
    """One session read from a file, with where it came from."""

    session: Session
    origin: str
    line: int


def finish(
    log: ProblemLog,
    meeting: Meeting | None,
    defined: Meeting | None,
    parsed: Sequence[Parsed],
    deadlines: Sequence[Deadline] | None,
    notices: Sequence[Problem] = (),
) -> ImportedAgenda:
    """Run the core's agenda checks on what was read; raise every problem at once, or return the result.

    `meeting` is the meeting the times were read against (None when it is unusable, in which case
    the log already says why); `defined` is the meeting the file itself describes; `notices` are
    the reader's own warnings (ignored columns, skipped events).
    """
    sessions = [p.session for p in parsed]
    origins = [p.origin for p in parsed]
    warnings: list[Problem] = []
    if meeting is not None:
        line_of = {p.origin: p.line for p in parsed}
        try:
            warnings = check_agenda(meeting, sessions, deadlines or (), where=origins)
        except InvalidInput as e:
            for problem in e.problems:
                log.add_problem(line_of.get(problem.where), problem)
    if log:
        raise log.error()
    origin_of: dict[str, str] = {p.session.id: p.origin for p in parsed}
    return ImportedAgenda(
        meeting=defined,
        sessions=tuple(sessions),
        origins=tuple(origins),
        deadlines=tuple(deadlines) if deadlines is not None else None,
        warnings=(*notices, *(_located(w, origin_of) for w in warnings)),
    )


def _located(warning: Problem, origin_of: Mapping[str, str]) -> Problem:
    """check_agenda names sessions by id; point at the file and line instead."""
    session_id = warning.where.removeprefix("session ")
    if session_id in origin_of:
        return Problem(origin_of[session_id], f"session {session_id}: {warning.what}")
    return warning


_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")


def sanitise_id(raw: str) -> str:
    """A session id from a foreign identifier: same input, same id, so re-imports keep it."""
    raw = raw.strip()
    cleaned = _NOT_ID.sub("-", raw).strip("._-")
    if cleaned == raw and len(raw) <= 128:
        return raw
    # Two different raw ids may clean up to the same text; the digest keeps them apart.
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    cleaned = cleaned[:119].rstrip("._-")
    return f"{cleaned}-{digest}" if cleaned else f"s-{digest}"


def derived_id(day: date | None, start: time | datetime | None, title: str) -> str:
    """A stable id for a row that has none: the same date, start and title give the same id."""
    key = f"{day.isoformat() if day else ''}|{start.isoformat() if start else ''}|{title.strip()}"
    return "s-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def in_meeting_tz(meeting: Meeting, day: date, at: time) -> tuple[datetime, str | None]:
    """The UTC instant of a wall-clock time at the meeting, and a problem if that time does not exist."""
    moment = meeting.localize(day, at)
    back = meeting.local(moment).replace(tzinfo=None)
    naive = datetime.combine(day, at)
    problem = None
    if back != naive:
        problem = f"{day} {at.strftime('%H:%M')} does not exist in {meeting.timezone} (the clocks change then)"
    return moment.astimezone(UTC), problem


_TIME = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?\s*$")


def parse_clock(text: str) -> time | None:
    """HH:MM, H:MM, HH:MM:SS, 9.30, 9h30, 9:30 PM; None when it is none of these."""
    m = _TIME.match(text)
    if not m:
        return None
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    half = (m.group(4) or "").lower().replace(".", "")
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)
