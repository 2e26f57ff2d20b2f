"""The change set between two agenda versions: what the bots announce and the changelog shows."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from .agenda import Document, Session, SessionStatus
from .deadline import Deadline
from .ids import MeetingId, SessionId


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    CANCELLED = "cancelled"
    REINSTATED = "reinstated"
    MOVED_TIME = "moved-time"
    MOVED_ROOM = "moved-room"
    RENAMED = "renamed"
    REDESCRIBED = "redescribed"
    STATUS = "status"
    TRACK = "track"
    REMOTE_LINK = "remote-link"
    CHAIRS = "chairs"
    DOCUMENT_ADDED = "document-added"
    DOCUMENT_WITHDRAWN = "document-withdrawn"
    DEADLINE_ADDED = "deadline-added"
    DEADLINE_MOVED = "deadline-moved"
    DEADLINE_CHANGED = "deadline-changed"
    DEADLINE_REMOVED = "deadline-removed"


@dataclass(frozen=True)
class TimeSpan:
    start: datetime
    end: datetime


Value = str | TimeSpan | Document | date | datetime | tuple[str, ...] | None


@dataclass(frozen=True)
class Change:
    """One difference. `subject` is the session or deadline id; `tracks` whom it concerns."""

    kind: ChangeKind
    subject: str
    title: str
    old: Value = None
    new: Value = None
    tracks: tuple[str, ...] = ()

    @property
    def is_deadline(self) -> bool:
        return self.kind.value.startswith("deadline-")


@dataclass(frozen=True)
class ChangeSet:
    meeting_id: MeetingId
    from_version: int | None
    to_version: int
    changes: tuple[Change, ...]

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def for_tracks(self, tracks: set[str] | None) -> ChangeSet:
        """Changes that concern a subscriber of `tracks` (None: all). Deadline changes concern everyone."""
        if tracks is None:
            return self
        kept = tuple(c for c in self.changes if c.is_deadline or not c.tracks or set(c.tracks) & tracks)
        return ChangeSet(self.meeting_id, self.from_version, self.to_version, kept)

    def of_kind(self, *kinds: ChangeKind) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind in kinds)


def diff_sessions(old: Mapping[SessionId, Session], new: Sequence[Session]) -> list[Change]:
    out: list[Change] = []
    for s in new:
        before = old.get(s.id)
        if before is None:
            out.append(Change(ChangeKind.ADDED, s.id, s.title, None, TimeSpan(s.start, s.end), _tracks(s)))
            if s.cancelled:
                out.append(Change(ChangeKind.CANCELLED, s.id, s.title, None, None, _tracks(s)))
            continue
        out.extend(_session_changes(before, s))
    return out


def _session_changes(a: Session, b: Session) -> Iterator[Change]:
    tracks = _tracks(a, b)

    def change(kind: ChangeKind, old: Value, new: Value) -> Change:
        return Change(kind, b.id, b.title, old, new, tracks)

    if a.status != b.status:
        if b.status is SessionStatus.CANCELLED:
            yield change(ChangeKind.CANCELLED, a.status.value, b.status.value)
        elif a.status is SessionStatus.CANCELLED:
            yield change(ChangeKind.REINSTATED, a.status.value, b.status.value)
        else:
            yield change(ChangeKind.STATUS, a.status.value, b.status.value)
    if (a.start, a.end) != (b.start, b.end):
        yield change(ChangeKind.MOVED_TIME, TimeSpan(a.start, a.end), TimeSpan(b.start, b.end))
    if a.room != b.room:
        yield change(ChangeKind.MOVED_ROOM, a.room, b.room)
    if a.title != b.title:
        yield change(ChangeKind.RENAMED, a.title, b.title)
    if a.description != b.description:
        yield change(ChangeKind.REDESCRIBED, a.description, b.description)
    if a.track != b.track:
        yield change(ChangeKind.TRACK, a.track, b.track)
    if a.remote_url != b.remote_url:
        yield change(ChangeKind.REMOTE_LINK, a.remote_url, b.remote_url)
    if a.chairs != b.chairs:
        yield change(ChangeKind.CHAIRS, a.chairs, b.chairs)
    before_docs = {d.url: d for d in a.documents}
    after_docs = {d.url: d for d in b.documents}
    for url, doc in after_docs.items():
        if url not in before_docs:
            yield change(ChangeKind.DOCUMENT_ADDED, None, doc)
    for url, doc in before_docs.items():
        if url not in after_docs:
            yield change(ChangeKind.DOCUMENT_WITHDRAWN, doc, None)


def diff_deadlines(old: Sequence[Deadline], new: Sequence[Deadline]) -> list[Change]:
    out: list[Change] = []
    before = {d.id: d for d in old}
    after = {d.id: d for d in new}
    for d in new:
        prev = before.get(d.id)
        if prev is None:
            out.append(Change(ChangeKind.DEADLINE_ADDED, d.id, d.title, None, d.due))
        else:
            if prev.due != d.due:
                out.append(Change(ChangeKind.DEADLINE_MOVED, d.id, d.title, prev.due, d.due))
            if (prev.title, prev.kind, prev.description, prev.url) != (d.title, d.kind, d.description, d.url):
                out.append(Change(ChangeKind.DEADLINE_CHANGED, d.id, d.title, prev.title, d.title))
    for d in old:
        if d.id not in after:
            out.append(Change(ChangeKind.DEADLINE_REMOVED, d.id, d.title, d.due, None))
    return out


def _tracks(*sessions: Session) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.track for s in sessions if s.track))
