from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Contact, Meeting, PracticalInfo

from .conftest import DATA, Write, lines_of, one_problem_matching


def _schedule(*events: str, tz: str = "Europe/Zurich", acronym: str = "wsis-2025") -> str:
    return "\n".join(
        [
            "<?xml version='1.0' encoding='utf-8' ?>",
            "<schedule>",
            "  <conference>",
            f"    <acronym>{acronym}</acronym>",
            "    <title>WSIS+20</title>",
            "    <start>2025-07-07</start>",
            "    <end>2025-07-11</end>",
            f"    <time_zone_name>{tz}</time_zone_name>",
            "  </conference>",
            "  <day index='1' date='2025-07-08'>",
            "    <room name='Room C'>",
            *events,
            "    </room>",
            "  </day>",
            "</schedule>",
            "",
        ]
    )


def _frab_event(event_id: str, when: str, duration: str) -> str:
    return (
        f"      <event id='{event_id}'><date>{when}</date><duration>{duration}</duration>"
        f"<title>Event {event_id}</title></event>"
    )


def test_a_pretalx_schedule_defines_the_meeting_and_its_sessions() -> None:
    result = load_agenda(DATA / "pretalx-schedule.xml", None)

    assert result.meeting is not None
    assert (result.meeting.id, result.meeting.timezone) == ("wsis-2025", "Europe/Zurich")
    assert (result.meeting.start_date, result.meeting.end_date) == (date(2025, 7, 7), date(2025, 7, 11))
    c2, _c5, statements = result.sessions
    assert c2.id == "1041"  # pretalx's event id is the submission's: stable across schedule releases
    assert c2.start == datetime(2025, 7, 7, 7, 0, tzinfo=UTC)
    assert c2.end == datetime(2025, 7, 7, 8, 30, tzinfo=UTC)
    assert c2.chairs == ("Cosmas Zavazava", "Gitanjali Sah")
    assert c2.description.endswith("with the action line facilitator & partners.")
    assert [d.title for d in c2.documents] == ["Session page", "Concept note"]
    assert statements.room == "Hall 2" and statements.track == "High-Level Segment"
    assert statements.description.startswith("Ministers and heads of delegation, 3 minutes each")
    assert result.origins == ("pretalx-schedule.xml:18", "pretalx-schedule.xml:47", "pretalx-schedule.xml:69")
    assert result.deadlines is None


def test_an_existing_meeting_keeps_what_the_schedule_does_not_know(wsis: Meeting) -> None:
    contact = Contact("Ms Gitanjali Sah", email="wsis-info@itu.int")
    stored = replace(wsis, venue="Palexpo", practical=PracticalInfo(contacts=(contact,)))
    result = load_agenda(DATA / "pretalx-schedule.xml", stored)
    assert result.meeting is not None
    assert result.meeting.title == "WSIS+20 High-Level Event 2025"
    assert result.meeting.venue == "Palexpo"
    assert result.meeting.practical.contacts[0].email == "wsis-info@itu.int"


def test_a_schedule_for_another_meeting_is_refused(fg_dlt: Meeting) -> None:
    with pytest.raises(InvalidInput) as error:
        load_agenda(DATA / "pretalx-schedule.xml", fg_dlt)
    one_problem_matching(error, "pretalx-schedule.xml:7:", "'wsis-2025'", "'fg-dlt-1'")


def test_events_without_date_use_the_day_and_the_meeting_zone(write: Write) -> None:
    path = write(
        "frab.xml",
        _schedule("      <event id='7'><start>14:00</start><duration>1:15</duration><title>Workshop</title></event>"),
    )
    (session,) = load_agenda(path, None).sessions
    assert session.start == datetime(2025, 7, 8, 12, 0, tzinfo=UTC)
    assert session.end == datetime(2025, 7, 8, 13, 15, tzinfo=UTC)
    assert session.room == "Room C"


def test_malformed_xml_names_the_line(write: Write) -> None:
    path = write("broken.xml", _schedule("      <event id='7'><title>Unclosed</event>"))
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == ["broken.xml:12: malformed XML: mismatched tag (column 38)"]


def test_entities_are_refused(write: Write) -> None:
    path = write(
        "bomb.xml",
        '<?xml version="1.0"?>\n<!DOCTYPE schedule [\n <!ENTITY a "aaaaaaaaaa">\n]>\n<schedule>&a;</schedule>\n',
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "bomb.xml:3:", "entity declarations")


def test_event_problems_are_collected_with_their_lines(write: Write) -> None:
    path = write(
        "events.xml",
        _schedule(
            _frab_event("1", "2025-07-08T09:00:00+02:00", "01:00"),
            _frab_event("2", "next tuesday", "01:00"),
            _frab_event("3", "2025-07-08T10:00:00+02:00", "an hour"),
            _frab_event("1", "2025-07-12T09:00:00+02:00", "01:00"),
        ),
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == [
        "events.xml:13: <date> 'next tuesday' is not an ISO date-time (2025-07-07T09:30:00+02:00)",
        "events.xml:14: <duration> 'an hour' is not HH:MM",
        "events.xml:15: id '1' is used twice (first at events.xml:12)",
        "events.xml:15: start 2025-07-12 09:00 CEST is outside the meeting's dates 2025-07-07..2025-07-11",
        "events.xml:15: end 2025-07-12 10:00 CEST is outside the meeting's dates 2025-07-07..2025-07-11",
    ]


def test_an_unknown_time_zone_is_named(write: Write) -> None:
    path = write("tz.xml", _schedule(tz="Europe/Genf"))
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == ["tz.xml:8: <conference>: 'Europe/Genf' is not an IANA timezone known to pytz"]
