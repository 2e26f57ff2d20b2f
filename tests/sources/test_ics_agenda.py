from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.agenda import SessionStatus
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Meeting

from .conftest import DATA, Write, lines_of, one_problem_matching


def _ics(*events: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *events, "END:VCALENDAR", ""])


def _event(uid: str, *lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250601T120000Z", *lines, "END:VEVENT"])


def test_an_indico_export(wsis: Meeting) -> None:
    result = load_agenda(DATA / "indico.ics", wsis)

    opening, roundtable, workshop = result.sessions
    assert opening.id == "indico-contribution-2201"
    assert opening.start == datetime(2025, 7, 8, 7, 0, tzinfo=UTC)
    assert opening.room == "Hall 2"
    assert opening.description.startswith("Opening by the ITU Secretary-General with UNESCO, UNDP and UNCTAD.")
    # TZID=Europe/Zurich in summer: UTC+2.
    assert roundtable.start == datetime(2025, 7, 8, 12, 0, tzinfo=UTC)
    assert roundtable.end == datetime(2025, 7, 8, 14, 30, tzinfo=UTC)
    assert roundtable.track == "Regulators' Roundtable"
    assert roundtable.remote_url == "https://meet.example.org/wsis-regulators"  # CONFERENCE before URL
    assert roundtable.status is SessionStatus.TENTATIVE
    # Floating time: the meeting's wall clock; the length comes from DURATION.
    assert workshop.start == datetime(2025, 7, 8, 14, 0, tzinfo=UTC)
    assert workshop.end == datetime(2025, 7, 8, 15, 30, tzinfo=UTC)
    assert workshop.status is SessionStatus.CANCELLED
    assert result.origins == (
        "indico.ics:VEVENT 1 (line 4)",
        "indico.ics:VEVENT 2 (line 15)",
        "indico.ics:VEVENT 3 (line 27)",
    )
    assert result.meeting is None and result.deadlines is None


def test_an_outlook_export_with_windows_zone_names_across_the_clock_change(autumn: Meeting) -> None:
    result = load_agenda(DATA / "outlook.ics", autumn)

    coordination, plenary = result.sessions
    assert coordination.start == datetime(2025, 10, 24, 7, 30, tzinfo=UTC)  # W. Europe, summer time
    assert plenary.start == datetime(2025, 10, 27, 8, 30, tzinfo=UTC)  # after the change
    assert coordination.remote_url == "https://teams.example.com/l/meetup-join/19%3ameeting_sg17coord"
    assert coordination.id.endswith("C2E3D401") and plenary.id.endswith("C2E3D402")
    (skipped,) = result.warnings
    assert skipped.where == "outlook.ics:VEVENT 3 (line 54)"
    assert "all-day event 'Social event (all day)' skipped" in skipped.what


def test_uids_become_stable_ids(wsis: Meeting, write: Write) -> None:
    content = _ics(
        _event("42@a.example", "SUMMARY:A", "DTSTART:20250708T070000Z", "DTEND:20250708T080000Z"),
        _event("42@b.example", "SUMMARY:B", "DTSTART:20250708T080000Z", "DTEND:20250708T090000Z"),
        _event("talk 7/day 2", "SUMMARY:C", "DTSTART:20250708T090000Z", "DTEND:20250708T100000Z"),
    )
    path = write("ids.ics", content)
    ids = [s.id for s in load_agenda(path, wsis).sessions]
    # '42' is not unique before the '@', so the whole UID is kept (cleaned); unsafe characters are replaced.
    assert ids[0].startswith("42-a.example-") and ids[1].startswith("42-b.example-")
    assert ids[0] != ids[1]
    assert ids[2].startswith("talk-7-day-2-")
    assert [s.id for s in load_agenda(path, wsis).sessions] == ids


def test_malformed_ics_names_the_line(wsis: Meeting, write: Write) -> None:
    content = _ics(
        _event("a", "SUMMARY:A", "DTSTART:20250708T070000Z", "DTEND:20250708T080000Z"),
        "BEGIN:VEVENT\r\nUID:b\r\nthis line is broken\r\nSUMMARY:B",
    )
    path = write("broken.ics", content)
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, wsis)
    assert lines_of(error) == [
        "broken.ics:11: BEGIN:VEVENT is never closed (END:VEVENT is missing)",
        "broken.ics:13: not an iCalendar content line (NAME:value): 'this line is broken'",
    ]


def test_event_problems_name_the_vevent_line_and_uid(wsis: Meeting, write: Write) -> None:
    content = _ics(
        _event("ok", "SUMMARY:Fine", "DTSTART:20250708T070000Z", "DTEND:20250708T080000Z"),
        _event("bogus-zone", "SUMMARY:Zone", "DTSTART;TZID=Mars/Olympus:20250708T090000", "DURATION:PT1H"),
        _event("weekly", "SUMMARY:Weekly", "DTSTART:20250708T070000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        _event("bad-date", "SUMMARY:Bad", "DTSTART:2025-07-08", "DURATION:PT1H"),
        _event("backwards", "SUMMARY:Backwards", "DTSTART:20250708T100000Z", "DTEND:20250708T090000Z"),
        _event("ok", "SUMMARY:Same UID", "DTSTART:20250709T070000Z", "DTEND:20250709T080000Z"),
    )
    path = write("events.ics", content)
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, wsis)
    assert lines_of(error) == [
        "events.ics:VEVENT 2 (line 11): UID 'bogus-zone': DTSTART has TZID 'Mars/Olympus', which is neither "
        "an IANA zone nor a Windows zone name, and the file has no VTIMEZONE for it",
        "events.ics:VEVENT 3 (line 18): UID 'weekly': recurring events are not supported; "
        "export the occurrences as separate events",
        "events.ics:VEVENT 4 (line 26): UID 'bad-date': DTSTART: Expected datetime, date, or time. Got: '2025-07-08'",
        "events.ics:VEVENT 5 (line 33): end 2025-07-08 11:00 CEST is not after start 2025-07-08 12:00 CEST",
        "events.ics:VEVENT 6 (line 40): id 'ok' is used twice (first at events.ics:VEVENT 1 (line 4))",
    ]


def test_an_ics_needs_an_existing_meeting() -> None:
    with pytest.raises(InvalidInput) as error:
        load_agenda(DATA / "indico.ics", None)
    one_problem_matching(error, "indico.ics", "create the meeting first")
