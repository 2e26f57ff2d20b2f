"""Agendas exported as iCalendar by Indico, pretalx or Outlook."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar

from floorbridge.core.agenda import Document, Session, SessionStatus
from floorbridge.core.errors import Problem
from floorbridge.core.ids import SessionId
from floorbridge.core.meeting import Meeting

from .imported import ImportedAgenda, Parsed, ProblemLog, derived_id, finish, in_meeting_tz, sanitise_id

_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+[;:]")
# Where the join link of an online meeting is, in order of preference (RFC 7986, then Teams).
_REMOTE_PROPERTIES = ("CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL", "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK", "URL")
_STATUS = {"CANCELLED": SessionStatus.CANCELLED, "TENTATIVE": SessionStatus.TENTATIVE}


@dataclass(frozen=True)
class _Event:
    number: int
    line: int
    component: icalendar.cal.Component

    @property
    def origin_label(self) -> str:
        return f"VEVENT {self.number} (line {self.line})"


def _structure(text: str, log: ProblemLog) -> list[int]:
    """Check content lines and BEGIN/END nesting ourselves, since icalendar's errors carry no line.

    Returns the line of each BEGIN:VEVENT, in order.
    """
    stack: list[tuple[str, int]] = []
    vevents: list[int] = []
    first = True
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw[0] in " \t":
            continue  # blank, or the continuation of a folded line
        if not _CONTENT_LINE.match(raw) or ":" not in raw:
            log.add(number, f"not an iCalendar content line (NAME:value): {raw[:60]!r}")
            continue
        name, _, value = raw.partition(":")
        name = name.split(";")[0].upper()
        value = value.strip().upper()
        if first and (name, value) != ("BEGIN", "VCALENDAR"):
            log.add(number, "an iCalendar file starts with BEGIN:VCALENDAR")
        first = False
        if name == "BEGIN":
            stack.append((value, number))
            if value == "VEVENT":
                vevents.append(number)
        elif name == "END":
            if not stack:
                log.add(number, f"END:{value} without a BEGIN")
            elif any(component == value for component, _ in stack):
                while stack[-1][0] != value:
                    component, opened = stack.pop()
                    log.add(opened, f"BEGIN:{component} is never closed (END:{component} is missing)")
                stack.pop()
            else:
                log.add(number, f"END:{value} does not match BEGIN:{stack[-1][0]} of line {stack[-1][1]}")
    for component, number in stack:
        log.add(number, f"BEGIN:{component} is never closed (END:{component} is missing)")
    if first:
        log.add(1, "the file is empty")
    return vevents


def read_ics(path: Path, raw: bytes, meeting: Meeting | None) -> ImportedAgenda:
    log = ProblemLog(path.name, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        log.add(raw[: e.start].count(b"\n") + 1, "not UTF-8 text, which iCalendar requires")
        raise log.error() from None
    vevent_lines = _structure(text, log)
    if log:
        raise log.error()
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as e:
        log.add(None, f"malformed iCalendar: {e}")
        raise log.error() from None
    if meeting is None:
        log.add(
            None,
            "an .ics file does not describe its meeting: create the meeting first with a YAML file "
            "that has a 'meeting:' block, then import this file into it",
        )
        raise log.error()

    components = [c for calendar in calendars for c in calendar.walk("VEVENT")]
    lines = vevent_lines if len(vevent_lines) == len(components) else [0] * len(components)
    events = [_Event(n, line, c) for n, (line, c) in enumerate(zip(lines, components, strict=True), start=1)]
    ids = _session_ids([str(e.component.get("UID", "")).strip() for e in events])
    parsed: list[Parsed] = []
    skipped: list[Problem] = []
    for event, session_id in zip(events, ids, strict=True):
        origin = f"{log.file}:{event.origin_label}"
        session = _session(event, session_id, meeting, log, origin, skipped)
        if session is not None:
            parsed.append(Parsed(session, origin, event.line))
    return finish(log, meeting, None, parsed, None, skipped)


def _session_ids(uids: list[str]) -> list[str | None]:
    """UID -> session id: 'indico-contribution-12@indico.example' becomes 'indico-contribution-12'
    when no other UID has the same part before '@'; characters ids cannot hold are replaced."""
    local_parts = Counter(uid.split("@", 1)[0] for uid in set(uids) if uid)
    out: list[str | None] = []
    for uid in uids:
        if not uid:
            out.append(None)
            continue
        local = uid.split("@", 1)[0]
        out.append(sanitise_id(local if "@" in uid and local and local_parts[local] == 1 else uid))
    return out


def _text(component: icalendar.cal.Component, name: str) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def _categories(component: icalendar.cal.Component) -> list[str]:
    value: Any = component.get("CATEGORIES")
    values = value if isinstance(value, list) else [value] if value is not None else []
    out: list[str] = []
    for v in values:
        cats = getattr(v, "cats", None)
        out.extend(str(c).strip() for c in (cats if cats is not None else [v]))
    return [c for c in out if c]


def _session(
    event: _Event,
    session_id: str | None,
    meeting: Meeting,
    log: ProblemLog,
    origin: str,
    skipped: list[Problem],
) -> Session | None:
    c = event.component
    uid = _text(c, "UID")
    title = _text(c, "SUMMARY")
    label = f"UID {uid!r}" if uid else f"event {title!r} (no UID)"

    def bad(what: str) -> None:
        log.add_problem(event.line, Problem(origin, f"{label}: {what}"))

    if c.errors:
        for prop, message in c.errors:
            bad(f"{prop}: {message}")
        return None
    if "RRULE" in c or "RDATE" in c or "RECURRENCE-ID" in c:
        bad("recurring events are not supported; export the occurrences as separate events")
        return None
    start_prop = c.get("DTSTART")
    if start_prop is None:
        bad("DTSTART is missing")
        return None
    if not isinstance(start_prop.dt, datetime):
        skipped.append(Problem(origin, f"{label}: all-day event {title!r} skipped; sessions need start and end times"))
        return None
    start = _utc(start_prop, meeting, "DTSTART", bad)
    end: datetime | None = None
    end_prop = c.get("DTEND")
    duration_prop = c.get("DURATION")
    if end_prop is not None:
        if isinstance(end_prop.dt, datetime):
            end = _utc(end_prop, meeting, "DTEND", bad)
        else:
            bad("DTEND is a date but DTSTART is a date-time")
            return None
    elif duration_prop is not None and isinstance(duration_prop.dt, timedelta):
        end = start + duration_prop.dt if start is not None else None
    else:
        bad("has neither DTEND nor DURATION, so its length is unknown")
        return None
    if start is None or end is None:
        return None

    documents = tuple(
        Document(str(a.params.get("FILENAME", "")) or str(a), str(a))
        for a in _all(c, "ATTACH")
        if str(a).startswith(("http://", "https://"))
    )
    categories = _categories(c)
    remote = next((_text(c, name) for name in _REMOTE_PROPERTIES if _text(c, name)), "")
    local = meeting.local(start)
    return Session(
        id=SessionId(session_id or derived_id(local.date(), local.time(), title)),
        title=title,
        start=start,
        end=end,
        track=categories[0] if categories else "",
        room=_text(c, "LOCATION"),
        remote_url=remote,
        description=_text(c, "DESCRIPTION"),
        documents=documents,
        status=_STATUS.get(_text(c, "STATUS").upper(), SessionStatus.SCHEDULED),
    )


def _all(component: icalendar.cal.Component, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _utc(prop: Any, meeting: Meeting, name: str, bad: Callable[[str], None]) -> datetime | None:
    moment: datetime = prop.dt
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    tzid = prop.params.get("TZID")
    if tzid:
        bad(
            f"{name} has TZID {tzid!r}, which is neither an IANA zone nor a Windows zone name, "
            "and the file has no VTIMEZONE for it"
        )
        return None
    # Floating time: the wall clock of wherever the meeting is.
    utc, problem = in_meeting_tz(meeting, moment.date(), moment.time())
    if problem:
        bad(f"{name} {problem}")
        return None
    return utc
