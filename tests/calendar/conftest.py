"""A Geneva meeting across the end of summer time, its agenda versions, and four iCal parsers.

Every feed is read back by independent parsers (icalendar, ical, vobject, ics) and reduced
to the same plain records, so a test states once what a subscribed client must see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import icalendar
import ics
import pytest
import vobject
from ical.calendar_stream import IcsCalendarStream

from floorbridge.core.agenda import Document, Session, SessionStatus
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.ids import DeadlineId, MeetingId, SessionId
from floorbridge.core.meeting import Meeting, RemoteParticipation
from floorbridge.core.versions import AgendaVersion, publish

ZURICH = "Europe/Zurich"
PUBLISHED_V1 = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
PUBLISHED_V2 = datetime(2025, 10, 20, 8, 30, tzinfo=UTC)


def make_meeting(timezone: str = ZURICH, start: date = date(2025, 10, 24), end: date = date(2025, 10, 27),
                 **kw: object) -> Meeting:
    fields: dict[str, object] = {
        "id": MeetingId("wsis-20"),
        "title": "WSIS+20 High-Level Event",
        "organiser": "ITU",
        "timezone": timezone,
        "start_date": start,
        "end_date": end,
        "venue": "CICG",
        "city": "Geneva",
        "url": "https://www.itu.int/wsis",
        "remote": RemoteParticipation(url="https://meet.example.org/wsis", platform="Zoom"),
    }
    fields.update(kw)
    return Meeting(**fields)  # type: ignore[arg-type]


def session(meeting: Meeting, sid: str, day: date, start: time, minutes: int = 60, **kw: object) -> Session:
    begin = meeting.localize(day, start)
    return Session(SessionId(sid), str(kw.pop("title", f"Session {sid}")), begin.astimezone(UTC),
                   (begin + timedelta(minutes=minutes)).astimezone(UTC), **kw)  # type: ignore[arg-type]


@pytest.fixture
def meeting() -> Meeting:
    return make_meeting()


@pytest.fixture
def working_v1(meeting: Meeting) -> list[Session]:
    """Friday 24 Oct 2025 is still summer time in Geneva; Monday 27 Oct is winter time."""
    fri, mon = date(2025, 10, 24), date(2025, 10, 27)
    return [
        session(meeting, "opening", fri, time(9), title="Opening, welcome; and\nhousekeeping",
                track="Plenary", room="Room 1", chairs=("Doreen Bogdan-Martin",),
                documents=(Document("Draft outcome", "https://docs.example.org/outcome.pdf"),),
                description="High-level opening of the event."),
        session(meeting, "wg1-a", fri, time(11), track="Working Group 1", room="Room 2",
                title="Доступ к цифровым услугам"),
        session(meeting, "wg1-b", mon, time(9), track="Working Group 1", room="Room 2",
                title="الشمول الرقمي"),
        session(meeting, "side", mon, time(13), 90, track="Side events", room="Room C",
                title="数字合作 side event", remote_url="https://webex.example.org/side"),
        session(meeting, "closing", mon, time(16), track="Plenary", room="Room 1", title="Closing",
                status=SessionStatus.TENTATIVE),
    ]


@pytest.fixture
def deadlines() -> list[Deadline]:
    return [
        Deadline(DeadlineId("registration"), DeadlineKind.REGISTRATION, "Online registration closes",
                 date(2025, 10, 10), source="Circular 25/123", url="https://www.itu.int/wsis/register"),
        Deadline(DeadlineId("slots"), DeadlineKind.SPEAKING_SLOT, "Requests for speaking slots",
                 datetime(2025, 10, 17, 15, 0, tzinfo=UTC), description="Send the form to the secretariat."),
    ]


@pytest.fixture
def v1(meeting: Meeting, working_v1: list[Session], deadlines: list[Deadline]) -> AgendaVersion:
    return publish(meeting.id, None, working_v1, deadlines, now=PUBLISHED_V1, comment="first")


@dataclass(frozen=True)
class Scenario:
    v1: AgendaVersion
    v2: AgendaVersion


@pytest.fixture
def scenario(meeting: Meeting, v1: AgendaVersion, working_v1: list[Session],
             deadlines: list[Deadline]) -> Scenario:
    """v2: wg1-a moved by 30 minutes, wg1-b moved room, side removed, closing renamed;
    the registration deadline extended by a week."""
    by_id = {s.id: s for s in working_v1}
    half = timedelta(minutes=30)
    working = [
        by_id[SessionId("opening")],
        replace(by_id[SessionId("wg1-a")], start=by_id[SessionId("wg1-a")].start + half,
                end=by_id[SessionId("wg1-a")].end + half),
        replace(by_id[SessionId("wg1-b")], room="Room 3"),
        replace(by_id[SessionId("closing")], title="Closing and adoption of the outcome"),
    ]
    moved = [replace(deadlines[0], due=date(2025, 10, 17)), deadlines[1]]
    v2 = publish(meeting.id, v1, working, moved, now=PUBLISHED_V2, comment="second")
    return Scenario(v1, v2)


# ---- parsers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One VEVENT as a client reads it. `start`/`end` are aware datetimes, or dates when all-day."""

    uid: str
    start: datetime | date
    end: datetime | date | None
    summary: str
    sequence: int | None
    status: str | None


def _instant(value: object) -> datetime | date:
    if isinstance(value, datetime):
        assert value.tzinfo is not None and value.utcoffset() is not None, f"floating time {value}"
        return value
    assert isinstance(value, date)
    return value


def parse_icalendar(body: bytes) -> list[Seen]:
    cal = icalendar.Calendar.from_ical(body)
    out = []
    for e in cal.walk("VEVENT"):
        end = e.decoded("DTEND") if "DTEND" in e else None
        out.append(Seen(
            str(e["UID"]), _instant(e.decoded("DTSTART")), _instant(end) if end is not None else None,
            str(e["SUMMARY"]), int(e.decoded("SEQUENCE")) if "SEQUENCE" in e else None,
            str(e["STATUS"]) if "STATUS" in e else None,
        ))
    return out


def parse_ical(body: bytes) -> list[Seen]:
    cal = IcsCalendarStream.calendar_from_ics(body.decode("utf-8"))
    return [
        Seen(e.uid or "", _instant(e.dtstart), _instant(e.dtend) if e.dtend is not None else None,
             e.summary or "", e.sequence, e.status.value if e.status is not None else None)
        for e in cal.events
    ]


def parse_vobject(body: bytes) -> list[Seen]:
    cal = vobject.readOne(body.decode("utf-8"))
    out = []
    for e in cal.contents.get("vevent", []):
        c = e.contents
        out.append(Seen(
            e.uid.value, _instant(e.dtstart.value), _instant(e.dtend.value) if "dtend" in c else None,
            e.summary.value, int(e.sequence.value) if "sequence" in c else None,
            e.status.value if "status" in c else None,
        ))
    return out


def parse_ics(body: bytes) -> list[Seen]:
    cal = ics.Calendar(body.decode("utf-8"))
    out = []
    for e in cal.events:
        sequence = [int(line.value) for line in e.extra if line.name == "SEQUENCE"]
        if e.all_day:
            start: datetime | date = e.begin.date()
            end: datetime | date | None = e.end.date()
        else:
            start = e.begin.datetime
            end = e.end.datetime if e.has_end() else None
        out.append(Seen(e.uid, start, end, e.name, sequence[0] if sequence else None, e.status))
    return out


PARSERS: dict[str, Callable[[bytes], list[Seen]]] = {
    "icalendar": parse_icalendar,
    "ical": parse_ical,
    "vobject": parse_vobject,
    "ics": parse_ics,
}


@pytest.fixture(params=sorted(PARSERS))
def parse(request: pytest.FixtureRequest) -> Callable[[bytes], dict[str, Seen]]:
    """Each test using this runs once per parser; the result is keyed by UID."""
    parser = PARSERS[request.param]

    def by_uid(body: bytes) -> dict[str, Seen]:
        seen = parser(body)
        out = {s.uid: s for s in seen}
        assert len(out) == len(seen), "duplicate UIDs"
        return out

    return by_uid


def uid(sid: str) -> str:
    return f"{sid}@wsis-20.floorbridge"
