"""The deadlines feed: whole-day and timed deadlines, their reminders and their SEQUENCE."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import icalendar
import vobject
from ical.calendar_stream import IcsCalendarStream

from floorbridge.calendar.feeds import render_feeds
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import AgendaVersion

from .conftest import Scenario, Seen

BASE = "https://floorbridge.example.org"
REGISTRATION = "deadline-registration@wsis-20.floorbridge"
SLOTS = "deadline-slots@wsis-20.floorbridge"


def body_of(meeting: Meeting, version: AgendaVersion) -> bytes:
    return render_feeds(meeting, version, base_url=BASE)["deadlines"].body


def test_whole_day_and_timed_deadlines(meeting: Meeting, v1: AgendaVersion,
                                       parse: Callable[[bytes], dict[str, Seen]]) -> None:
    seen = parse(body_of(meeting, v1))
    registration, slots = seen[REGISTRATION], seen[SLOTS]
    assert registration.start == date(2025, 10, 10) and not isinstance(registration.start, datetime)
    assert registration.end == date(2025, 10, 11)
    assert registration.summary == "Deadline: Online registration closes"
    # 15:00 UTC is 17:00 in Geneva on 17 October (summer time).
    assert slots.start == datetime(2025, 10, 17, 15, 0, tzinfo=UTC)
    assert slots.summary == "Deadline: Requests for speaking slots"


def test_date_values_and_tzid_on_the_wire(meeting: Meeting, v1: AgendaVersion) -> None:
    raw = body_of(meeting, v1).split(b"\r\n")
    assert b"DTSTART;VALUE=DATE:20251010" in raw
    assert b"DTEND;VALUE=DATE:20251011" in raw
    assert b"DTSTART;TZID=Europe/Zurich:20251017T170000" in raw


def test_deadline_properties(meeting: Meeting, v1: AgendaVersion) -> None:
    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body_of(meeting, v1)).events}
    registration, slots = events[REGISTRATION], events[SLOTS]
    assert registration.categories == ["registration"]
    assert slots.categories == ["speaking-slot"]
    assert "Source: Circular 25/123" in str(registration["DESCRIPTION"])
    assert str(registration["URL"]) == "https://www.itu.int/wsis/register"
    assert str(slots["URL"]) == "https://www.itu.int/wsis"
    assert "Send the form to the secretariat." in str(slots["DESCRIPTION"])
    assert registration["TRANSP"] == "TRANSPARENT"
    # A deadline is an instant: no DTEND (DTEND equal to DTSTART would be invalid).
    assert "DTEND" not in slots
    assert registration.decoded("SEQUENCE") == slots.decoded("SEQUENCE") == 0


def test_reminders_in_every_parser(meeting: Meeting, v1: AgendaVersion) -> None:
    body = body_of(meeting, v1)
    # The defaults, 7 days, 1 day and 2 hours before: a whole-day deadline rings at 09:00 a week
    # before, the day before and on the day; a timed one exactly that long before.
    whole_day = [timedelta(days=-6, hours=-15), timedelta(hours=-15), timedelta(hours=9)]
    timed = [timedelta(days=-7), timedelta(days=-1), timedelta(hours=-2)]

    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).events}
    for key, expected in ((REGISTRATION, whole_day), (SLOTS, timed)):
        alarms = events[key].walk("VALARM")
        assert [a.decoded("TRIGGER") for a in alarms] == expected
        assert all(a["ACTION"] == "DISPLAY" for a in alarms)
        assert all(str(a["DESCRIPTION"]).startswith("Deadline: ") for a in alarms)

    strict = {e.uid: e for e in IcsCalendarStream.calendar_from_ics(body.decode()).events}
    assert [a.trigger for a in strict[REGISTRATION].alarm] == whole_day
    assert [a.trigger for a in strict[SLOTS].alarm] == timed

    loose = {e.uid.value: e for e in vobject.readOne(body.decode()).vevent_list}
    assert [a.trigger.value for a in loose[REGISTRATION].valarm_list] == whole_day
    assert [a.trigger.value for a in loose[SLOTS].valarm_list] == timed


def test_whole_day_reminder_rings_at_nine_the_day_before(meeting: Meeting, v1: AgendaVersion) -> None:
    body = body_of(meeting, v1)
    registration = next(e for e in icalendar.Calendar.from_ical(body).events if e["UID"] == REGISTRATION)
    start = registration.decoded("DTSTART")
    rings = [datetime.combine(start, datetime.min.time()) + a.decoded("TRIGGER") for a in registration.walk("VALARM")]
    assert rings == [datetime(2025, 10, 3, 9, 0), datetime(2025, 10, 9, 9, 0), datetime(2025, 10, 10, 9, 0)]
    assert [str(a["DESCRIPTION"]) for a in registration.walk("VALARM")] == [
        "Deadline: Online registration closes (in 7 days)",
        "Deadline: Online registration closes (tomorrow)",
        "Deadline: Online registration closes (today)",
    ]


def test_configured_reminder_offsets(meeting: Meeting, v1: AgendaVersion) -> None:
    offsets = (timedelta(days=14), timedelta(hours=36), timedelta(minutes=30))
    body = render_feeds(meeting, v1, base_url=BASE, alarm_offsets=offsets)["deadlines"].body
    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).events}
    timed = events[SLOTS].walk("VALARM")
    assert [a.decoded("TRIGGER") for a in timed] == [-o for o in offsets]
    assert [str(a["DESCRIPTION"]).rsplit("(", 1)[1] for a in timed] == [
        "in 14 days)", "in 1 day 12 hours)", "in 30 minutes)"
    ]
    # Whole days count for a whole-day deadline: 36 hours rings at 09:00 the day before.
    whole_day = events[REGISTRATION].walk("VALARM")
    assert [a.decoded("TRIGGER") for a in whole_day] == [
        timedelta(days=-14, hours=9), timedelta(days=-1, hours=9), timedelta(hours=9)
    ]


def test_no_reminders_when_none_are_configured(meeting: Meeting, v1: AgendaVersion) -> None:
    body = render_feeds(meeting, v1, base_url=BASE, alarm_offsets=())["deadlines"].body
    assert b"BEGIN:VALARM" not in body


def test_sequence_never_goes_down_across_versions(meeting: Meeting, scenario: Scenario,
                                                  parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = parse(body_of(meeting, scenario.v1)), parse(body_of(meeting, scenario.v2))
    for key in (REGISTRATION, SLOTS):
        old, new = before[key].sequence, after[key].sequence
        assert old is not None and new is not None
        assert new >= old
    moved_old, moved_new = before[REGISTRATION].sequence, after[REGISTRATION].sequence
    assert moved_old is not None and moved_new is not None
    assert moved_new > moved_old


def test_deadline_feed_without_deadlines_is_still_valid(meeting: Meeting, v1: AgendaVersion,
                                                        parse: Callable[[bytes], dict[str, Seen]]) -> None:
    from dataclasses import replace

    body = body_of(meeting, replace(v1, deadlines=()))
    assert parse(body) == {}
    assert len(icalendar.Calendar.from_ical(body).timezones) == 1
