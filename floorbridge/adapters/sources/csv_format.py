"""Agendas kept in a spreadsheet and saved as CSV (Excel, LibreOffice, Google Sheets)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time
from pathlib import Path

from floorbridge.core.agenda import Document, Session, SessionStatus
from floorbridge.core.errors import Problem
from floorbridge.core.ids import SessionId
from floorbridge.core.meeting import Meeting

from .imported import (
    ImportedAgenda,
    Parsed,
    ProblemLog,
    derived_id,
    finish,
    in_meeting_tz,
    parse_clock,
)

# Column names are matched case-insensitively, with '_' and '-' read as spaces.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "uid", "session id", "code", "ref", "reference"),
    "title": ("title", "session", "session title", "name", "subject", "summary"),
    "date": ("date", "day"),
    "start": ("start", "start time", "starts", "begin", "from", "time from"),
    "end": ("end", "end time", "ends", "finish", "to", "until", "time to"),
    "track": ("track", "stream", "category", "theme"),
    "room": ("room", "location", "venue", "hall"),
    "remote_url": ("remote url", "remote", "link", "url", "remote link", "online link", "join link"),
    "description": ("description", "abstract", "details", "notes"),
    "chairs": ("chairs", "chair", "moderator", "moderators", "chair moderator", "chairs moderators"),
    "documents": ("documents", "document", "docs"),
    "status": ("status", "state"),
}
REQUIRED = ("title", "start", "end")

_BY_ALIAS = {alias: name for name, aliases in ALIASES.items() for alias in aliases}

_STATUS = {
    "": SessionStatus.SCHEDULED,
    "scheduled": SessionStatus.SCHEDULED,
    "confirmed": SessionStatus.SCHEDULED,
    "tentative": SessionStatus.TENTATIVE,
    "provisional": SessionStatus.TENTATIVE,
    "tbc": SessionStatus.TENTATIVE,
    "cancelled": SessionStatus.CANCELLED,
    "canceled": SessionStatus.CANCELLED,
}

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_EU_DATE = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")
_MIDNIGHT = re.compile(r"\s+00:00(:00)?$")
_URL = re.compile(r"https?://\S+")
DATE_FORMATS = "YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY"


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def parse_day(text: str) -> date | None:
    """ISO, DD.MM.YYYY or DD/MM/YYYY (day first, as in Geneva); a spreadsheet's ' 00:00' is dropped."""
    text = _MIDNIGHT.sub("", text.strip())
    try:
        if m := _ISO_DATE.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m := _EU_DATE.match(text):
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        return None
    return None


def _delimiter(text: str) -> str:
    """The header row decides: whichever of ; , or tab it has most of, outside quotes."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path, raw: bytes, meeting: Meeting | None) -> ImportedAgenda:
    log = ProblemLog(path.name, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        log.add(
            raw[: e.start].count(b"\n") + 1,
            "not UTF-8 text; in the spreadsheet choose 'CSV UTF-8' (Excel) or character set UTF-8",
        )
        raise log.error() from None
    if meeting is None:
        log.add(
            None,
            "a CSV file does not describe its meeting: create the meeting first with a YAML file "
            "that has a 'meeting:' block, then import this file into it",
        )
        raise log.error()

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    rows: list[tuple[int, list[str]]] = []
    read_up_to = 0
    try:
        for cells in reader:
            rows.append((read_up_to + 1, cells))
            read_up_to = reader.line_num
    except csv.Error as e:
        log.add(reader.line_num, f"cannot read this row: {e}")
        raise log.error() from None
    rows = [(line, cells) for line, cells in rows if any(c.strip() for c in cells)]
    if not rows:
        log.add(1, "the file is empty; the first row must name the columns (title, date, start, end, ...)")
        raise log.error()

    header_line, header = rows[0]
    column: dict[str, int] = {}
    label: dict[str, str] = {}
    ignored: list[Problem] = []
    for index, name in enumerate(header):
        field = _BY_ALIAS.get(_normal(name))
        if not name.strip():
            continue
        if field is None:
            ignored.append(
                Problem(
                    f"{log.file}:{header_line}",
                    f"column {name.strip()!r} is not one we know and was ignored (known: {', '.join(ALIASES)})",
                )
            )
        elif field in column:
            log.add(header_line, f"columns {label[field]!r} and {name.strip()!r} both mean {field!r}")
        else:
            column[field] = index
            label[field] = name.strip()
    for field in REQUIRED:
        if field not in column:
            names = ", ".join(repr(a) for a in ALIASES[field])
            log.add(header_line, f"missing required column {field!r} (accepted names: {names})")
    if any(field not in column for field in REQUIRED):
        raise log.error()

    parsed: list[Parsed] = []
    for line, cells in rows[1:]:
        session = _row(line, cells, header, column, label, meeting, log)
        if session is not None:
            parsed.append(Parsed(session, f"{log.file}:{line}", line))
    return finish(log, meeting, None, parsed, None, ignored)


def _row(
    line: int,
    cells: list[str],
    header: list[str],
    column: dict[str, int],
    label: dict[str, str],
    meeting: Meeting,
    log: ProblemLog,
) -> Session | None:
    if any(c.strip() for c in cells[len(header) :]):
        log.add(
            line,
            f"this row has {len(cells)} cells but the header has {len(header)}; "
            "a cell holding the delimiter needs quotes",
        )
        return None

    def cell(field: str) -> str:
        index = column.get(field)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def bad(field: str, what: str) -> None:
        log.add(line, f"column {label.get(field, field)!r}: {what}")

    ok = True
    day: date | None = None
    if "date" in column:
        day = parse_day(cell("date"))
        if day is None and cell("date"):
            bad("date", f"cannot read {cell('date')!r} as a date (use {DATE_FORMATS})")
            ok = False
    date_reported = not ok
    moments: dict[str, datetime] = {}
    clocks: dict[str, time] = {}
    for field in ("start", "end"):
        value = cell(field)
        own_day, clock = _day_and_clock(value)
        if clock is None:
            bad(field, f"cannot read {value!r} as a time (use HH:MM)" if value else "is empty")
            ok = False
            continue
        clocks[field] = clock
        when = own_day or day
        if when is None:
            if not date_reported:
                date_reported = True
                if "date" not in column:
                    bad("date", "missing: add a 'date' column, or write start and end as 'YYYY-MM-DD HH:MM'")
                else:
                    bad("date", "is empty")
            ok = False
            continue
        moment, problem = in_meeting_tz(meeting, when, clock)
        if problem:
            bad(field, problem)
            ok = False
        moments[field] = moment

    documents, not_links = _documents(cell("documents"))
    for entry in not_links:
        bad("documents", f"{entry!r} has no link; write 'Title https://…', one per line or separated by '|'")
        ok = False
    title = cell("title")
    status = _STATUS.get(cell("status").lower())
    if status is None:
        bad("status", f"{cell('status')!r} is not scheduled, tentative or cancelled")
        ok = False
    if not ok or status is None:
        return None
    return Session(
        id=SessionId(cell("id") or derived_id(day, clocks.get("start"), title)),
        title=title,
        start=moments["start"],
        end=moments["end"],
        track=cell("track"),
        room=cell("room"),
        remote_url=cell("remote_url"),
        description=cell("description"),
        documents=documents,
        chairs=tuple(c.strip() for c in re.split(r"[;|\n]", cell("chairs")) if c.strip()),
        status=status,
    )


def _day_and_clock(value: str) -> tuple[date | None, time | None]:
    """'09:30', or a whole date-time such as '2025-07-07 09:30' or '07.07.2025 09:30'."""
    clock = parse_clock(value)
    if clock is not None:
        return None, clock
    parts = re.split(r"[T\s]+", value.strip(), maxsplit=1)
    if len(parts) == 2:
        day = parse_day(parts[0])
        clock = parse_clock(parts[1])
        if day is not None and clock is not None:
            return day, clock
    return None, None


def _documents(value: str) -> tuple[tuple[Document, ...], list[str]]:
    """One document per line or '|'-separated entry: 'Title https://…' or a bare URL."""
    out: list[Document] = []
    not_links: list[str] = []
    for entry in re.split(r"[|\n]", value):
        found = _URL.search(entry)
        if not found:
            if entry.strip():
                not_links.append(entry.strip())
            continue
        url = found.group(0).rstrip(">)],;")
        title = (entry[: found.start()] + entry[found.end() :]).strip(" \t<>()[]-:–")
        out.append(Document(title or url, url))
    return tuple(out), not_links
