"""VEVENTs for sessions and deadlines, with UIDs that never change between agenda versions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from icalendar import Alarm, Event, Parameters, vUri

from floorbridge.core.agenda import Session, SessionStatus
from floorbridge.core.deadline import Deadline
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import PublishedSession

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Text as iCalendar allows it: newlines normalised, other control characters dropped."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def session_uid(meeting: Meeting, session_id: str) -> str:
    return f"{session_id}@{meeting.id}.floorbridge"


def deadline_uid(meeting: Meeting, deadline_id: str) -> str:
    return f"deadline-{deadline_id}@{meeting.id}.floorbridge"


@dataclass(frozen=True)
class Placed:
    """An event with the absolute instant it starts at, which orders a feed."""

    start: datetime
    uid: str
    event: Event


_STATUS = {
    SessionStatus.SCHEDULED: "CONFIRMED",
    SessionStatus.TENTATIVE: "TENTATIVE",
    SessionStatus.CANCELLED: "CANCELLED",
}

# Clients disagree about STATUS:CANCELLED in subscribed feeds: Thunderbird strikes the event
# through, but Outlook and several phone calendars show it like any other event, so a
# delegate could travel to a session that will not take place. The SUMMARY therefore says
# it too; the prefix costs nothing in clients that honour STATUS.
CANCELLED_PREFIX = "Cancelled: "


def remote_link(meeting: Meeting, session: Session) -> str:
    return session.remote_url or meeting.remote.url


def location(meeting: Meeting, session: Session) -> str:
    parts: list[str] = []
    for part in (session.room, meeting.venue, meeting.city):
        part = clean_text(part)
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts)


def session_description(meeting: Meeting, session: Session) -> str:
    blocks: list[str] = []
    if session.cancelled:
        blocks.append("This session has been cancelled.")
    if session.description.strip():
        blocks.append(clean_text(session.description))
    if session.chairs:
        label = "Chair" if len(session.chairs) == 1 else "Chairs"
        blocks.append(f"{label}: " + ", ".join(clean_text(c) for c in session.chairs))
    if session.documents:
        lines = ["Documents:"]
        lines += [f"- {clean_text(d.title)}: {d.url}" for d in session.documents]
        blocks.append("\n".join(lines))
    link = remote_link(meeting, session)
    if link and not session.cancelled:
        platform = f" ({clean_text(meeting.remote.platform)})" if meeting.remote.platform.strip() else ""
        blocks.append(f"Remote participation{platform}: {link}")
    return "\n\n".join(blocks)


def session_event(meeting: Meeting, published: PublishedSession, *, stamp: datetime) -> Placed:
    s = published.session
    uid = session_uid(meeting, s.id)
    title = clean_text(s.title)
    ev = Event()
    ev.add("UID", uid)
    ev.add("DTSTAMP", stamp)
    ev.add("LAST-MODIFIED", published.last_modified)
    ev.add("SEQUENCE", published.sequence)
    # Wall-clock time with TZID: clients then keep 09:00 at 09:00 whatever their own zone does.
    ev.add("DTSTART", meeting.local(s.start))
    ev.add("DTEND", meeting.local(s.end))
    ev.add("SUMMARY", CANCELLED_PREFIX + title if s.cancelled else title)
    description = session_description(meeting, s)
    if description:
        ev.add("DESCRIPTION", description)
    where = location(meeting, s)
    if where:
        ev.add("LOCATION", where)
    ev.add("STATUS", _STATUS[s.status])
    ev.add("TRANSP", "TRANSPARENT" if s.cancelled else "OPAQUE")
    link = remote_link(meeting, s)
    url = link or meeting.url
    if url:
        ev.add("URL", vUri(url), parameters={"VALUE": "URI"})
    if link and not s.cancelled:
        # A parameter value cannot hold a double quote or a line break (RFC 5545 §3.1).
        label = " ".join(clean_text(meeting.remote.platform).replace('"', "'").split()) or "Join remotely"
        params = Parameters({"VALUE": "URI", "FEATURE": ["VIDEO", "AUDIO"], "LABEL": label})
        ev.add("CONFERENCE", vUri(link), parameters=params)
    if s.track.strip():
        ev.add("CATEGORIES", [clean_text(s.track)])
    for doc in s.documents:
        ev.add("ATTACH", vUri(doc.url))
    return Placed(s.start, uid, ev)


# Reminders before a deadline, as offsets before it (settings: feeds.deadline_alarms).
DEFAULT_ALARM_OFFSETS = (timedelta(days=7), timedelta(days=1), timedelta(hours=2))

# For an all-day deadline RFC 5545 makes a relative TRIGGER count from DTSTART, i.e. local
# midnight of the due day in the subscriber's own zone: -P1D would ring at midnight. All-day
# reminders therefore ring at 09:00 (-PT15H is 09:00 the day before), the way Apple Calendar
# encodes "1 day before at 09:00": an offset of N whole days rings at 09:00 N days before, an
# offset under a day at 09:00 on the day itself. Timed deadlines count back exactly.
_ALL_DAY_REMINDER_AT = timedelta(hours=9)


def _ahead(span: timedelta) -> str:
    days, seconds = span.days, span.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return "in " + " ".join(words) if words else "now"


def timed_alarms(offsets: Iterable[timedelta]) -> list[tuple[timedelta, str]]:
    """TRIGGERs relative to a timed deadline, earliest first, each with what it announces."""
    return [(-o, _ahead(o)) for o in sorted(set(offsets), reverse=True)]


def all_day_alarms(offsets: Iterable[timedelta]) -> list[tuple[timedelta, str]]:
    """TRIGGERs relative to the start of an all-day deadline's day, at 09:00 local time."""
    out: list[tuple[timedelta, str]] = []
    for days in sorted({o.days for o in offsets}, reverse=True):
        when = "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"
        out.append((_ALL_DAY_REMINDER_AT - timedelta(days=days), when))
    return out


DEADLINE_PREFIX = "Deadline: "


def deadline_sequence(version_number: int) -> int:
    """SEQUENCE of every deadline in agenda version `version_number`.

    Core keeps no per-deadline history (only the current version's change set), so the
    version in which a due date last moved is unknown. The version number itself never
    decreases, so deriving SEQUENCE from it guarantees that a moved deadline always carries
    a higher SEQUENCE than any copy a client already has; the cost is that unchanged deadlines
    are bumped too, which a subscribed client simply re-applies. Version 1 gives 0.
    """
    return max(version_number - 1, 0)


def deadline_start(meeting: Meeting, deadline: Deadline) -> datetime:
    """The absolute instant a deadline falls on (local midnight for a whole-day one)."""
    due = deadline.due
    if isinstance(due, datetime):
        return due
    return meeting.localize(due, time())


def deadline_description(deadline: Deadline) -> str:
    blocks = [clean_text(deadline.description)] if deadline.description.strip() else []
    if deadline.source.strip():
        blocks.append(f"Source: {clean_text(deadline.source)}")
    if deadline.url:
        blocks.append(deadline.url)
    return "\n\n".join(blocks)


def deadline_event(
    meeting: Meeting,
    deadline: Deadline,
    *,
    stamp: datetime,
    sequence: int,
    alarm_offsets: Iterable[timedelta] = DEFAULT_ALARM_OFFSETS,
) -> Placed:
    uid = deadline_uid(meeting, deadline.id)
    title = clean_text(deadline.title)
    ev = Event()
    ev.add("UID", uid)
    ev.add("DTSTAMP", stamp)
    ev.add("SEQUENCE", sequence)
    due = deadline.due
    if isinstance(due, datetime):
        # No DTEND: a date-time DTSTART alone is an instant (RFC 5545 §3.6.1), which a
        # deadline is; DTEND equal to DTSTART would be invalid.
        ev.add("DTSTART", meeting.local(due))
        alarms = timed_alarms(alarm_offsets)
    else:
        ev.add("DTSTART", _date(due))
        ev.add("DTEND", _date(due) + timedelta(days=1))
        alarms = all_day_alarms(alarm_offsets)
    ev.add("SUMMARY", DEADLINE_PREFIX + title)
    description = deadline_description(deadline)
    if description:
        ev.add("DESCRIPTION", description)
    ev.add("STATUS", "CONFIRMED")
    ev.add("TRANSP", "TRANSPARENT")
    url = deadline.url or meeting.url
    if url:
        ev.add("URL", vUri(url), parameters={"VALUE": "URI"})
    ev.add("CATEGORIES", [deadline.kind.value])
    for trigger, when in alarms:
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", f"{DEADLINE_PREFIX}{title} ({when})")
        alarm.add("TRIGGER", trigger)
        ev.add_component(alarm)
    return Placed(deadline_start(meeting, deadline), uid, ev)


def _date(day: date) -> date:
    """A plain date: icalendar writes a datetime subclass as DATE-TIME."""
    return date(day.year, day.month, day.day)
