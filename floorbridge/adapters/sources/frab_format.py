"""frab schedule XML, as exported by pretalx (schedule.xml), frab and the C3VOC tools.

Parsed with expat directly: it gives each element's line for error messages, and the
handlers below refuse entity declarations and external entities, which is what defusedxml
does (billion laughs, XXE) without adding a dependency.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from xml.parsers import expat

from floorbridge.core.agenda import Document, Session
from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import MeetingId, SessionId, is_slug, slugify
from floorbridge.core.meeting import Meeting, check_meeting

from .imported import ImportedAgenda, Parsed, ProblemLog, derived_id, finish, in_meeting_tz, sanitise_id

_DURATION = re.compile(r"^(?:(\d+):)??(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")


class _Forbidden(Exception):
    pass


def _refuse(*_: object) -> int:
    raise _Forbidden("entity declarations and external entities are not allowed in a schedule")


class _Tree:
    def __init__(self, root: ET.Element, lines: dict[ET.Element, int]) -> None:
        self.root = root
        self.lines = lines

    def line(self, element: ET.Element) -> int:
        return self.lines.get(element, 0)


def _parse(raw: bytes, log: ProblemLog) -> _Tree:
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as e:
        log.add(e.lineno, f"malformed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})")
        raise log.error() from None
    except _Forbidden as e:
        log.add(parser.CurrentLineNumber, str(e))
        raise log.error() from None
    return _Tree(builder.close(), lines)


def _child_text(element: ET.Element, name: str) -> str:
    child = element.find(name)
    return "".join(child.itertext()).strip() if child is not None else ""


def read_frab(path: Path, raw: bytes, existing: Meeting | None) -> ImportedAgenda:
    log = ProblemLog(path.name, str(path))
    tree = _parse(raw, log)
    root = tree.root
    if root.tag != "schedule":
        log.add(tree.line(root), f"the root element is <{root.tag}>; a frab schedule has <schedule>")
        raise log.error()
    conference = root.find("conference")
    if conference is None:
        log.add(tree.line(root), "<conference> is missing: it names the meeting, its dates and timezone")
        raise log.error()
    meeting = _meeting(conference, tree, existing, log)

    parsed: list[Parsed] = []
    for day in root.iter("day"):
        for room in day.iter("room"):
            for event in room.iter("event"):
                session = _session(event, day, room, tree, meeting, log) if meeting is not None else None
                if session is not None:
                    line = tree.line(event)
                    parsed.append(Parsed(session, f"{log.file}:{line}", line))
    return finish(log, meeting, meeting, parsed, None)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _meeting(conference: ET.Element, tree: _Tree, existing: Meeting | None, log: ProblemLog) -> Meeting | None:
    def at(name: str) -> int:
        child = conference.find(name)
        return tree.line(child if child is not None else conference)

    acronym = _child_text(conference, "acronym")
    title = _child_text(conference, "title")
    tz = _child_text(conference, "time_zone_name") or (existing.timezone if existing else "")
    start = _day(_child_text(conference, "start"))
    end = _day(_child_text(conference, "end"))
    ok = True
    for name, value in (("acronym", acronym), ("title", title), ("start", start), ("end", end)):
        if not value:
            given = _child_text(conference, name)
            log.add(at(name), f"<conference><{name}> is {'not a date: ' + repr(given) if given else 'missing'}")
            ok = False
    if not tz:
        log.add(at("time_zone_name"), "<conference><time_zone_name> is missing (an IANA zone, e.g. Europe/Zurich)")
        ok = False
    if not ok or start is None or end is None:
        return None
    meeting_id = MeetingId(acronym if is_slug(acronym) else slugify(acronym))
    if existing is not None and existing.id != meeting_id:
        log.add(
            at("acronym"),
            f"the schedule is for {acronym!r} (meeting id {meeting_id!r}), but it is being imported into "
            f"{existing.id!r}; import it into that meeting or change the acronym",
        )
        return None
    base_url = _child_text(conference, "base_url")
    if existing is not None:
        # The schedule knows dates, title and zone; venue, contacts and the rest stay as they were.
        meeting = replace(
            existing, title=title, start_date=start, end_date=end, timezone=tz, url=existing.url or base_url
        )
    else:
        meeting = Meeting(
            id=meeting_id, title=title, organiser="", timezone=tz, start_date=start, end_date=end, url=base_url
        )
    try:
        check_meeting(meeting, where="conference")
    except InvalidInput as e:
        element = {"conference.timezone": "time_zone_name", "conference.end_date": "end", "conference.id": "acronym"}
        for problem in e.problems:
            log.add(at(element.get(problem.where, "title")), f"<conference>: {problem.what}")
        return None
    return meeting


def _duration(text: str) -> timedelta | None:
    m = _DURATION.match(text.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _session(
    event: ET.Element, day: ET.Element, room: ET.Element, tree: _Tree, meeting: Meeting, log: ProblemLog
) -> Session | None:
    def line(name: str) -> int:
        child = event.find(name)
        return tree.line(child if child is not None else event)

    ok = True
    start: datetime | None = None
    when = _child_text(event, "date")
    if when:
        try:
            parsed = datetime.fromisoformat(when)
            if parsed.tzinfo is None:
                start, problem = in_meeting_tz(meeting, parsed.date(), parsed.time())
                if problem:
                    log.add(line("date"), f"<date>: {problem}")
                    ok = False
            else:
                start = parsed.astimezone(UTC)
        except ValueError:
            log.add(line("date"), f"<date> {when!r} is not an ISO date-time (2025-07-07T09:30:00+02:00)")
            ok = False
    else:
        on = _day(day.get("date", ""))
        clock = _CLOCK.match(_child_text(event, "start"))
        if on is None or clock is None:
            log.add(line("start"), "needs <date> (ISO with offset), or <start> HH:MM inside a <day date=...>")
            ok = False
        else:
            start, problem = in_meeting_tz(meeting, on, time(int(clock.group(1)), int(clock.group(2))))
            if problem:
                log.add(line("start"), f"<start>: {problem}")
                ok = False
    length = _duration(_child_text(event, "duration"))
    if length is None:
        given = _child_text(event, "duration")
        log.add(line("duration"), f"<duration> {given!r} is not HH:MM" if given else "<duration> is missing")
        ok = False
    if not ok or start is None or length is None:
        return None

    title = _child_text(event, "title")
    raw_id = event.get("id") or event.get("guid") or ""
    local = meeting.local(start)
    paragraphs = [_child_text(event, "subtitle"), _child_text(event, "abstract"), _child_text(event, "description")]
    documents = [
        Document("".join(link.itertext()).strip() or link.get("href", ""), link.get("href", ""))
        for container in ("links", "attachments")
        for link in event.findall(f"{container}/*")
        if link.get("href")
    ]
    return Session(
        id=SessionId(sanitise_id(raw_id) if raw_id.strip() else derived_id(local.date(), local.time(), title)),
        title=title,
        start=start,
        end=start + length,
        track=_child_text(event, "track"),
        room=_child_text(event, "room") or room.get("name", ""),
        description="\n\n".join(dict.fromkeys(p for p in paragraphs if p)),
        documents=tuple(documents),
        chairs=tuple(name for p in event.findall("persons/person") if (name := "".join(p.itertext()).strip())),
    )
