"""iCalendar feeds (RFC 5545, RFC 7986) rendered once per published agenda version.

Output is deterministic: the same meeting and version give the same bytes, so the ETag of a
feed only changes when its content does.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

from icalendar import Calendar, vText

from floorbridge import __version__
from floorbridge.core.deadline import Deadline
from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.ids import slugify
from floorbridge.core.meeting import Meeting, zone
from floorbridge.core.ports import RenderedFeed
from floorbridge.core.versions import AgendaVersion, PublishedSession

from .events import DEFAULT_ALARM_OFFSETS, Placed, clean_text, deadline_event, deadline_sequence, session_event
from .vtimezone import vtimezone

PRODID = "-//floorbridge//floorbridge {}//EN".format(".".join(__version__.split(".")[:2]))


def feed_path(meeting_id: str, key: str) -> str:
    """Where the web adapter serves feed `key` (kept in step with adapters/web/links.py)."""
    if key == "all":
        return f"/ical/{meeting_id}.ics"
    return f"/ical/{meeting_id}/{key}.ics"


def build_calendar(
    meeting: Meeting,
    version: AgendaVersion,
    sessions: Iterable[PublishedSession],
    deadlines: Iterable[Deadline],
    *,
    name: str,
    description: str = "",
    source_url: str = "",
    refresh_minutes: int = 60,
    alarm_offsets: Sequence[timedelta] = DEFAULT_ALARM_OFFSETS,
) -> Calendar:
    """A VCALENDAR of `sessions` and `deadlines` as published in `version`.

    `source_url` is the feed's own absolute URL (RFC 7986 SOURCE), "" to leave it out;
    `alarm_offsets` say how long before each deadline its reminders ring.
    """
    if refresh_minutes < 1:
        raise InvalidInput([Problem("refresh_minutes", f"must be at least 1, not {refresh_minutes}")])
    stamp = version.published_at.astimezone(UTC)
    placed = [session_event(meeting, p, stamp=stamp) for p in sessions]
    sequence = deadline_sequence(version.number)
    placed += [
        deadline_event(meeting, d, stamp=stamp, sequence=sequence, alarm_offsets=alarm_offsets) for d in deadlines
    ]
    placed.sort(key=lambda p: (p.start, p.uid))

    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("METHOD", "PUBLISH")
    # icalendar escapes only the properties it knows as TEXT; NAME (RFC 7986) and the X-WR-*
    # ones are unknown to it, so they are given as vText to get commas, semicolons and newlines escaped.
    name = " ".join(clean_text(name).split())
    description = clean_text(description)
    cal.add("NAME", vText(name))
    cal.add("X-WR-CALNAME", vText(name))
    if description:
        cal.add("DESCRIPTION", description)
        cal.add("X-WR-CALDESC", vText(description))
    cal.add("X-WR-TIMEZONE", vText(meeting.timezone))
    # Written as minutes, as given: PT60M is as valid a DURATION as PT1H and says what was set.
    every = f"PT{refresh_minutes}M"
    cal.add("REFRESH-INTERVAL", vText(every), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", vText(every))
    if source_url:
        cal.add("SOURCE", source_url, parameters={"VALUE": "URI"})
    if meeting.url:
        cal.add("URL", meeting.url, parameters={"VALUE": "URI"})
    cal.add("LAST-MODIFIED", stamp)

    first, last = _date_range(meeting, placed)
    # The meeting's zone is always described (X-WR-TIMEZONE names it), which also keeps a
    # calendar with no events valid: RFC 5545 wants at least one component.
    for tzid in sorted({meeting.timezone} | _used_tzids(placed)):
        cal.add_component(vtimezone(tzid, zone(tzid), first, last))
    for p in placed:
        cal.add_component(p.event)
    return cal


def _used_tzids(placed: Iterable[Placed]) -> set[str]:
    out: set[str] = set()
    for p in placed:
        for key in ("DTSTART", "DTEND"):
            value = p.event.get(key)
            tzid = value.params.get("TZID") if value is not None else None
            if tzid:
                out.add(str(tzid))
    return out


def _date_range(meeting: Meeting, placed: Iterable[Placed]) -> tuple[date, date]:
    days = [meeting.start_date, meeting.end_date]
    for p in placed:
        days.append(meeting.local(p.start).date())
        end = p.event.get("DTEND")
        if end is not None and isinstance(end.dt, datetime):
            days.append(meeting.local(end.dt).date())
    return min(days), max(days)


def to_bytes(cal: Calendar) -> bytes:
    """UTF-8 iCalendar text: CRLF line ends, lines folded at 75 octets (icalendar does both)."""
    return cast(bytes, cal.to_ical())


def rendered(key: str, body: bytes, last_modified: datetime) -> RenderedFeed:
    return RenderedFeed(
        key=key,
        body=body,
        gzipped=gzip.compress(body, mtime=0),
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        last_modified=last_modified,
    )


def _published_line(version: AgendaVersion) -> str:
    at = version.published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Agenda version {version.number}, published {at}."


def _description(meeting: Meeting, version: AgendaVersion, what: str) -> str:
    parts = [f"{what} {meeting.title}. {_published_line(version)}"]
    if meeting.description.strip():
        parts.append(meeting.description)
    return "\n\n".join(parts)


def render_feeds(
    meeting: Meeting,
    version: AgendaVersion,
    *,
    base_url: str,
    refresh_minutes: int = 60,
    alarm_offsets: Sequence[timedelta] = DEFAULT_ALARM_OFFSETS,
) -> dict[str, RenderedFeed]:
    """Every public feed of `version`: "all", "tracks/<slug>" per track, and "deadlines"."""
    base = base_url.rstrip("/")

    def render(key: str, sessions: Iterable[PublishedSession], deadlines: Iterable[Deadline],
               name: str, what: str) -> RenderedFeed:
        cal = build_calendar(
            meeting,
            version,
            sessions,
            deadlines,
            name=name,
            description=_description(meeting, version, what),
            source_url=base + feed_path(meeting.id, key) if base else "",
            refresh_minutes=refresh_minutes,
            alarm_offsets=alarm_offsets,
        )
        return rendered(key, to_bytes(cal), version.published_at)

    feeds = {"all": render("all", version.sessions, (), meeting.title, "All sessions of")}
    for slug, track in version.tracks().items():
        in_track = [p for p in version.sessions if p.session.track and slugify(p.session.track) == slug]
        key = f"tracks/{slug}"
        feeds[key] = render(key, in_track, (), f"{meeting.title} — {track}", f"Sessions of {track} at")
    feeds["deadlines"] = render(
        "deadlines", (), version.deadlines, f"{meeting.title} — Deadlines", "Deadlines of"
    )
    return feeds


def render_personal_feed(
    meeting: Meeting,
    version: AgendaVersion,
    session_ids: Iterable[str],
    *,
    deadlines: bool,
    name: str,
    source_url: str = "",
    refresh_minutes: int = 60,
    alarm_offsets: Sequence[timedelta] = DEFAULT_ALARM_OFFSETS,
) -> bytes:
    """A feed of the chosen sessions (ids not in `version` are skipped), with the deadlines if asked."""
    wanted = set(session_ids)
    chosen = [p for p in version.sessions if p.session.id in wanted]
    cal = build_calendar(
        meeting,
        version,
        chosen,
        version.deadlines if deadlines else (),
        name=name,
        description=_description(meeting, version, "Personal selection from"),
        source_url=source_url,
        refresh_minutes=refresh_minutes,
        alarm_offsets=alarm_offsets,
    )
    return to_bytes(cal)


@dataclass(frozen=True)
class PersonalPart:
    """What one followed meeting contributes to a delegate's personal feed."""

    meeting: Meeting
    version: AgendaVersion
    session_ids: frozenset[str]
    deadlines: bool


def render_personal_calendar(
    parts: Sequence[PersonalPart],
    *,
    name: str,
    refresh_minutes: int = 60,
    alarm_offsets: Sequence[timedelta] = DEFAULT_ALARM_OFFSETS,
) -> bytes:
    """One feed for everything a delegate follows, across meetings: each meeting's events and its
    VTIMEZONE once (two meetings in one zone share it)."""
    if not parts:
        empty = Calendar()
        for key, value in (("PRODID", PRODID), ("VERSION", "2.0"), ("CALSCALE", "GREGORIAN"), ("METHOD", "PUBLISH")):
            empty.add(key, value)
        empty.add("NAME", vText(name))
        empty.add("X-WR-CALNAME", vText(name))
        return to_bytes(empty)
    calendars = [
        build_calendar(
            part.meeting,
            part.version,
            [p for p in part.version.sessions if p.session.id in part.session_ids],
            part.version.deadlines if part.deadlines else (),
            name=name,
            description=_description(part.meeting, part.version, "Personal selection from"),
            refresh_minutes=refresh_minutes,
            alarm_offsets=alarm_offsets,
        )
        for part in parts
    ]
    merged = calendars[0]
    zones = {str(c.get("TZID")) for c in merged.subcomponents if c.name == "VTIMEZONE"}
    for cal in calendars[1:]:
        for component in cal.subcomponents:
            if component.name == "VTIMEZONE":
                if str(component.get("TZID")) in zones:
                    continue
                zones.add(str(component.get("TZID")))
            merged.add_component(component)
    if len(parts) > 1:
        merged.pop("DESCRIPTION", None)
        merged.pop("X-WR-CALDESC", None)
    return to_bytes(merged)


__all__ = [
    "PRODID",
    "PersonalPart",
    "build_calendar",
    "feed_path",
    "render_feeds",
    "render_personal_calendar",
    "render_personal_feed",
    "rendered",
    "to_bytes",
]
