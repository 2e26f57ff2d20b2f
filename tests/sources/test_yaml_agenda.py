from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.agenda import SessionStatus
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Meeting

from .conftest import Write, lines_of, one_problem_matching

MEETING_BLOCK = """\
meeting:
  id: wsis-2025
  title: WSIS+20 High-Level Event 2025
  organiser: ITU
  timezone: Europe/Zurich
  start_date: 2025-07-07
  end_date: 2025-07-11
"""


def test_a_meeting_with_sessions_and_deadlines_is_read_in_utc(write: Write) -> None:
    path = write(
        "wsis.yaml",
        MEETING_BLOCK
        + """\
  languages: [ar, zh, en, fr, ru, es]
  country: NO
  practical:
    wifi_ssid: ITUwifi
    contacts:
      - name: Ms Gitanjali Sah
        email: wsis-info@itu.int
sessions:
  - id: opening
    title: Opening ceremony
    date: 2025-07-08
    start: 9:30
    end: 10:30
    room: Hall 2
    chairs: [ITU Secretary-General]
    documents:
      - title: Programme
        url: https://www.wsis.org/forum
  - id: late-statement
    title: Statement by video
    start: 2025-07-09T18:00:00+00:00
    end: 2025-07-09T18:05:00+00:00
    status: tentative
deadlines:
  - id: speaking-slot
    kind: speaking-slot
    title: Speaking-slot requests
    due: 2025-04-30
  - id: registration
    kind: registration
    title: Registration closes
    due: "2025-07-01 17:00"
""",
    )
    result = load_agenda(path, None)

    assert result.meeting is not None
    assert result.meeting.languages == ("ar", "zh", "en", "fr", "ru", "es")
    # YAML 1.1 would read NO as false, and 9:30 as the base-60 number 570.
    assert result.meeting.country == "NO"
    assert result.meeting.practical.contacts[0].email == "wsis-info@itu.int"
    opening, video = result.sessions
    assert opening.start == datetime(2025, 7, 8, 7, 30, tzinfo=UTC)
    assert opening.end == datetime(2025, 7, 8, 8, 30, tzinfo=UTC)
    assert opening.documents[0].url == "https://www.wsis.org/forum"
    assert video.start == datetime(2025, 7, 9, 18, 0, tzinfo=UTC)
    assert video.status is SessionStatus.TENTATIVE
    assert result.origins == ("wsis.yaml:16", "wsis.yaml:26")
    assert result.deadlines is not None
    slot, registration = result.deadlines
    assert slot.kind is DeadlineKind.SPEAKING_SLOT and slot.due == date(2025, 4, 30)
    assert registration.due == datetime(2025, 7, 1, 15, 0, tzinfo=UTC)
    assert result.warnings == ()


def test_local_times_follow_the_clock_change(write: Write, autumn: Meeting) -> None:
    path = write(
        "sg17.yaml",
        """\
sessions:
  - {id: before, title: Friday plenary, date: 2025-10-24, start: "09:30", end: "12:30"}
  - {id: after, title: Monday plenary, date: 2025-10-27, start: "09:30", end: "12:30"}
""",
    )
    result = load_agenda(path, autumn)

    before, after = result.sessions
    assert before.start == datetime(2025, 10, 24, 7, 30, tzinfo=UTC)  # CEST, UTC+2
    assert after.start == datetime(2025, 10, 27, 8, 30, tzinfo=UTC)  # CET, UTC+1
    assert result.meeting is None
    assert result.deadlines is None  # the file says nothing about deadlines


def test_a_time_that_the_clock_change_skips_is_refused(write: Write) -> None:
    path = write(
        "spring.yaml",
        """\
meeting: {id: spring, title: Spring, organiser: ITU, timezone: Europe/Zurich,
          start_date: 2025-03-29, end_date: 2025-03-31}
sessions:
  - {id: night, title: Night session, date: 2025-03-30, start: "02:30", end: "03:30"}
""",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "spring.yaml:4:", "sessions[0].start", "does not exist in Europe/Zurich")


def test_unknown_keys_and_wrong_types_name_the_key_and_its_line(write: Write) -> None:
    path = write(
        "typos.yaml",
        MEETING_BLOCK
        + """\
sessions:
  - id: opening
    title: Opening
    date: 2025-07-08
    start: "09:00"
    end: "10:00"
    romm: Hall 2
  - id: statements
    title: [not, a, string]
    date: 2025-07-09
    start: 9.30
    end: "11:00"
    status: postponed
agenda: []
""",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)

    assert error.value.source.endswith("typos.yaml")
    assert one_problem_matching(error, "typos.yaml:14:", "sessions[0].romm").endswith(
        "unknown key (did you mean 'room'? allowed: id, title, date, start, end, track, room, remote_url, "
        "description, documents, chairs, status)"
    )
    one_problem_matching(error, "typos.yaml:16:", "sessions[1].title", "valid string")
    one_problem_matching(error, "typos.yaml:18:", "sessions[1].start", "is a number, not a time", '"09:30"')
    one_problem_matching(error, "typos.yaml:20:", "sessions[1].status", "'scheduled', 'tentative' or 'cancelled'")
    one_problem_matching(error, "typos.yaml:21:", "agenda: unknown key")
    assert len(error.value.problems) == 5


def test_agenda_checks_report_the_session_line(write: Write) -> None:
    path = write(
        "checks.yaml",
        MEETING_BLOCK
        + """\
sessions:
  - id: opening
    title: Opening
    date: 2025-07-08
    start: "11:00"
    end: "10:00"
  - id: early
    title: Before the meeting
    date: 2025-07-06
    start: "09:00"
    end: "10:00"
  - id: opening
    title: Opening again
    date: 2025-07-09
    start: "09:00"
    end: "10:00"
deadlines:
  - {id: reg, kind: registration, title: Registration, due: 2025-07-01}
  - {id: reg, kind: other, title: Registration again, due: 2025-07-02}
""",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)

    one_problem_matching(error, "checks.yaml:9:", "end 2025-07-08 10:00 CEST is not after start 2025-07-08 11:00 CEST")
    one_problem_matching(error, "checks.yaml:14:", "start 2025-07-06 09:00 CEST is outside", "2025-07-07..2025-07-11")
    one_problem_matching(error, "checks.yaml:19:", "id 'opening' is used twice (first at checks.yaml:9)")
    one_problem_matching(error, "checks.yaml:26:", "deadlines[1].id", "used twice (first on line 25)")
    # Listed in file order.
    assert [p.where for p in error.value.problems] == [
        "checks.yaml:9",
        "checks.yaml:14",
        "checks.yaml:14",
        "checks.yaml:19",
        "checks.yaml:26",
    ]


def test_an_unknown_timezone_is_named_with_its_line(write: Write) -> None:
    path = write(
        "tz.yaml",
        MEETING_BLOCK.replace("Europe/Zurich", "Europe/Geneva")
        + "sessions:\n  - {id: a, title: A, date: 2025-07-08, start: '09:00', end: '10:00'}\n",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == ["tz.yaml:5: meeting.timezone: 'Europe/Geneva' is not an IANA timezone known to pytz"]


def test_missing_keys_point_at_their_parent(write: Write) -> None:
    path = write(
        "missing.yaml",
        MEETING_BLOCK + "sessions:\n  - id: a\n    title: A\n    date: 2025-07-08\n    start: '09:00'\n",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == ["missing.yaml:9: sessions[0]: missing required key 'end'"]


def test_duplicate_keys_and_impossible_dates_are_caught(write: Write) -> None:
    path = write(
        "dup.yaml",
        MEETING_BLOCK + "sessions:\n  - id: a\n    title: A\n    title: B\n    date: 2025-07-08\n"
        "    start: '09:00'\n    end: '10:00'\n",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "dup.yaml:11:", "key 'title' appears twice (first on line 10)")

    path = write("feb.yaml", MEETING_BLOCK.replace("2025-07-11", "2025-02-30"))
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "feb.yaml:7:", "'2025-02-30' is not a date in the calendar")


def test_broken_yaml_names_the_line(write: Write) -> None:
    path = write("broken.yaml", "sessions:\n  - id: a\n    title: [unclosed\n  - id: b\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    (problem,) = lines_of(error)
    assert problem.startswith("broken.yaml:4: not valid YAML")


def test_sessions_without_a_meeting_ask_for_one_first(write: Write) -> None:
    path = write("orphan.yaml", "sessions:\n  - {id: a, title: A, date: 2025-07-08, start: '09:00', end: '10:00'}\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "orphan.yaml:1:", "create the meeting first", "'meeting:' block")


def test_a_file_for_another_meeting_is_refused(write: Write, fg_dlt: Meeting) -> None:
    path = write("other.yaml", MEETING_BLOCK + "sessions: []\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, fg_dlt)
    one_problem_matching(error, "other.yaml:2:", "meeting.id", "'wsis-2025'", "'fg-dlt-1'")


def test_full_datetimes_need_an_offset(write: Write, wsis: Meeting) -> None:
    path = write(
        "naive.yaml",
        "sessions:\n  - {id: a, title: A, start: '2025-07-08T09:00', end: '2025-07-08T10:00+02:00'}\n",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, wsis)
    one_problem_matching(error, "naive.yaml:2:", "sessions[0].start", "has no UTC offset")


def test_meeting_problems_are_all_reported_at_once(write: Write) -> None:
    path = write(
        "meeting.yaml",
        """\
meeting:
  id: Bad_Id
  title: ""
  organiser: ITU
  timezone: Europe/Zurich
  start_date: 2025-07-07
  end_date: 2025-07-01
  practical:
    contacts:
      - name: X
        emial: x@example.org
""",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    assert lines_of(error) == [
        "meeting.yaml:2: meeting.id: 'Bad_Id' is not a slug (a-z, 0-9 and inner '-')",
        "meeting.yaml:3: meeting.title: must not be empty",
        "meeting.yaml:7: meeting.end_date: 2025-07-01 is before start_date 2025-07-07",
        "meeting.yaml:11: meeting.practical.contacts[0].emial: unknown key (did you mean 'email'? "
        "allowed: name, role, email, phone)",
    ]
