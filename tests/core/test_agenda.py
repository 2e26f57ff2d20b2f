from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from floorbridge.core.agenda import SessionStatus, check_agenda, utc
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Meeting, check_meeting

from .conftest import make_session


def test_local_times_across_the_dst_switch(meeting: Meeting) -> None:
    # Europe/Zurich leaves summer time on Sunday 26 October 2025 at 03:00.
    before = make_session(meeting, "a", 25, "09:00", "10:00")
    after = make_session(meeting, "b", 27, "09:00", "10:00")
    assert utc(before.start) == datetime(2025, 10, 25, 7, 0, tzinfo=UTC)
    assert utc(after.start) == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)


def test_valid_agenda_has_no_errors_or_warnings(meeting: Meeting) -> None:
    sessions = [make_session(meeting, "a", 24, "09:30", "12:30", room="A"),
                make_session(meeting, "b", 24, "12:30", "13:30", room="A")]
    assert check_agenda(meeting, sessions) == []


def test_every_error_is_reported_with_its_origin(meeting: Meeting) -> None:
    sessions = [
        make_session(meeting, "a", 24, "10:00", "09:00"),
        make_session(meeting, "a", 24, "11:00", "12:00"),
        make_session(meeting, "bad id", 30, "11:00", "12:00", title=" "),
    ]
    with pytest.raises(InvalidInput) as err:
        check_agenda(meeting, sessions, where=["f.yaml:3", "f.yaml:9", "f.yaml:15"])
    text = str(err.value)
    assert "f.yaml:3: end 2025-10-24 09:00 CEST is not after start 2025-10-24 10:00 CEST" in text
    assert "f.yaml:9: id 'a' is used twice (first at f.yaml:3)" in text
    assert "f.yaml:15: id 'bad id'" in text
    assert "f.yaml:15: title must not be empty" in text
    assert "outside the meeting's dates 2025-10-24..2025-10-27" in text
    assert len(err.value.problems) == 6


def test_room_clash_is_flagged_not_refused(meeting: Meeting) -> None:
    sessions = [
        make_session(meeting, "a", 24, "09:30", "12:30", room="Room A"),
        make_session(meeting, "b", 24, "12:00", "13:00", room="room a"),
        make_session(meeting, "c", 24, "12:00", "13:00", room="Room B"),
        make_session(meeting, "d", 24, "12:00", "13:00", room="Room A", status=SessionStatus.CANCELLED),
    ]
    warnings = check_agenda(meeting, sessions)
    assert [w.where for w in warnings] == ["session b"]
    assert "also used by a until 2025-10-24 12:30" in warnings[0].what


def test_meeting_checks_timezone_and_dates(meeting: Meeting) -> None:
    bad = replace(meeting, id=meeting.id, timezone="Europe/Genevaa", end_date=meeting.start_date.replace(day=1))
    with pytest.raises(InvalidInput) as err:
        check_meeting(bad)
    assert "'Europe/Genevaa' is not an IANA timezone" in str(err.value)
    assert "before start_date" in str(err.value)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        utc(datetime(2025, 1, 1, 9, 0))
