"""Agenda versions: a working copy is edited, `publish` freezes the next numbered version.

Modelled on pretalx's schedule releases: every version carries the change set against the
one before it, and each session carries the iCal SEQUENCE and LAST-MODIFIED it has in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .agenda import Session, SessionStatus
from .changes import ChangeSet, diff_deadlines, diff_sessions
from .deadline import Deadline
from .errors import NothingToPublish
from .ids import MeetingId, slugify


@dataclass(frozen=True)
class PublishedSession:
    session: Session
    sequence: int
    last_modified: datetime


@dataclass(frozen=True)
class AgendaVersion:
    meeting_id: MeetingId
    number: int
    published_at: datetime
    comment: str
    sessions: tuple[PublishedSession, ...]
    deadlines: tuple[Deadline, ...]
    changes: ChangeSet

    def session(self, session_id: str) -> PublishedSession | None:
        return next((p for p in self.sessions if p.session.id == session_id), None)

    def tracks(self) -> dict[str, str]:
        """Track slug -> track name, for the tracks that have sessions in this version."""
        out: dict[str, str] = {}
        for p in self.sessions:
            if p.session.track:
                out.setdefault(slugify(p.session.track), p.session.track)
        return dict(sorted(out.items()))


def _scheduling(s: Session) -> tuple[object, ...]:
    """What a calendar client must re-apply: RFC 5545 asks SEQUENCE to grow when these change."""
    return (s.start, s.end, s.room, s.status)


def publish(
    meeting_id: MeetingId,
    previous: AgendaVersion | None,
    working: Sequence[Session],
    deadlines: Sequence[Deadline],
    *,
    now: datetime,
    comment: str = "",
) -> AgendaVersion:
    """Freeze `working` as the version after `previous`.

    A session that was published and is missing from the working copy is kept as cancelled,
    so subscribed calendars show the cancellation instead of silently losing the event.
    Raises NothingToPublish when nothing changed.
    """
    prev_by_id = {p.session.id: p for p in previous.sessions} if previous else {}
    working_ids = {s.id for s in working}
    sessions = list(working)
    for p in previous.sessions if previous else ():
        if p.session.id not in working_ids:
            sessions.append(replace(p.session, status=SessionStatus.CANCELLED))
    sessions.sort(key=lambda s: (s.start, s.end, s.id))

    old_sessions = {k: p.session for k, p in prev_by_id.items()}
    changes = diff_sessions(old_sessions, sessions)
    changes += diff_deadlines(previous.deadlines if previous else (), deadlines)
    number = previous.number + 1 if previous else 1
    if previous is not None and not changes:
        raise NothingToPublish(f"meeting {meeting_id}: the working copy equals version {previous.number}")

    published: list[PublishedSession] = []
    for s in sessions:
        before = prev_by_id.get(s.id)
        if before is None:
            published.append(PublishedSession(s, 0, now))
        elif before.session == s:
            published.append(before)
        else:
            bump = _scheduling(before.session) != _scheduling(s)
            published.append(PublishedSession(s, before.sequence + (1 if bump else 0), now))
    return AgendaVersion(
        meeting_id=meeting_id,
        number=number,
        published_at=now,
        comment=comment,
        sessions=tuple(published),
        deadlines=tuple(sorted(deadlines, key=lambda d: (str(d.due), d.id))),
        changes=ChangeSet(meeting_id, previous.number if previous else None, number, tuple(changes)),
    )
