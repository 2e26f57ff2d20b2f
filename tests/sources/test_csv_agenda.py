from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.agenda import SessionStatus
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Meeting

from .conftest import DATA, Write, lines_of, one_problem_matching


def test_a_semicolon_csv_with_bom_and_day_first_dates(fg_dlt: Meeting) -> None:
    result = load_agenda(DATA / "agenda-semicolon.csv", fg_dlt)

    opening, _discussion, structure, working_groups = result.sessions
    assert opening.id == "fg1-open"
    assert opening.start == datetime(2017, 10, 17, 7, 30, tzinfo=UTC)
    assert opening.end == datetime(2017, 10, 17, 9, 0, tzinfo=UTC)
    assert opening.description == "Welcome by TSB;\nadoption of the agenda"
    assert opening.chairs == ("David Watrin", "TSB")
    assert opening.remote_url == "https://itu.example.org/join/fgdlt"
    assert structure.status is SessionStatus.TENTATIVE
    assert working_groups.status is SessionStatus.CANCELLED
    # The quoted two-line cell makes row 2 take lines 2-3, so the next row is on line 4.
    assert result.origins == (
        "agenda-semicolon.csv:2",
        "agenda-semicolon.csv:4",
        "agenda-semicolon.csv:5",
        "agenda-semicolon.csv:6",
    )
    assert result.meeting is None and result.deadlines is None


def test_a_row_without_id_keeps_the_same_id_on_reimport(fg_dlt: Meeting, write: Write) -> None:
    first = load_agenda(DATA / "agenda-semicolon.csv", fg_dlt).sessions[1]
    assert first.id.startswith("s-")
    # Same row, other columns changed and another row added before it: the id stays.
    path = write(
        "again.csv",
        "title,date,start,end,room\n"
        "Coffee,17/10/2017,11:00,11:15,Lounge\n"
        "General discussion on DLT and its standardization,2017-10-17,11:15,12:45,Room K\n",
    )
    assert load_agenda(path, fg_dlt).sessions[1].id == first.id


def test_comma_csv_with_aliases_and_summer_time_change(autumn: Meeting, write: Write) -> None:
    path = write(
        "sg17.csv",
        "Session ID,Name,Day,Start Time,End Time,Location,Documents\n"
        "fri,Friday plenary,24/10/2025,9:30,12:30,Popov Room,"
        '"Agenda https://itu.example.org/agenda.docx | https://itu.example.org/tdl.xlsx"\n'
        "mon,Monday plenary,27/10/2025,9:30 AM,12:30 PM,Popov Room,\n",
    )
    friday, monday = load_agenda(path, autumn).sessions
    assert friday.start == datetime(2025, 10, 24, 7, 30, tzinfo=UTC)
    assert monday.start == datetime(2025, 10, 27, 8, 30, tzinfo=UTC)
    assert monday.end == datetime(2025, 10, 27, 11, 30, tzinfo=UTC)
    assert [(d.title, d.url) for d in friday.documents] == [
        ("Agenda", "https://itu.example.org/agenda.docx"),
        ("https://itu.example.org/tdl.xlsx", "https://itu.example.org/tdl.xlsx"),
    ]


def test_an_unparseable_date_names_the_line_and_column(fg_dlt: Meeting, write: Write) -> None:
    rows = [
        "id;title;date;start;end",
        'a;"Opening, with a',  # a quoted cell over two lines: line numbers must still be real
        ' long title";17.10.2017;09:30;11:00',
        "b;Discussion;17.10.2017;11:15;12:30",
        "c;Structure;17.10.2017;14:30;16:00",
        "d;Vice-chairs;17.10.2017;16:15;17:30",
        "e;Use cases;18 Oct 2017;09:30;11:00",
    ]
    path = write("bad-date.csv", "\n".join(rows) + "\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, fg_dlt)
    assert lines_of(error) == [
        "bad-date.csv:7: column 'date': cannot read '18 Oct 2017' as a date (use YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)"
    ]


def test_a_missing_required_column_is_named(fg_dlt: Meeting, write: Write) -> None:
    path = write("no-end.csv", "Title,Date,Start,Room\nOpening,17.10.2017,09:30,C2\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, fg_dlt)
    (problem,) = lines_of(error)
    assert problem.startswith("no-end.csv:1: missing required column 'end' (accepted names: 'end', 'end time'")


def test_several_row_problems_are_reported_together(fg_dlt: Meeting, write: Write) -> None:
    path = write(
        "many.csv",
        "id,title,date,start,end,status,Interpretation\n"
        "a,Opening,17.10.2017,25:00,11:00,,EN/FR\n"
        "b,Discussion,17.10.2017,11:15,10:00,,\n"
        "c,Bad status,18.10.2017,09:30,10:00,postponed,\n"
        "b,Twice,18.10.2017,10:30,11:00,,\n"
        "d,Outside,20.10.2017,09:30,10:00,,\n",
    )
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, fg_dlt)
    assert lines_of(error) == [
        "many.csv:2: column 'start': cannot read '25:00' as a time (use HH:MM)",
        "many.csv:3: end 2017-10-17 10:00 CEST is not after start 2017-10-17 11:15 CEST",
        "many.csv:4: column 'status': 'postponed' is not scheduled, tentative or cancelled",
        "many.csv:5: id 'b' is used twice (first at many.csv:3)",
        "many.csv:6: start 2017-10-20 09:30 CEST is outside the meeting's dates 2017-10-17..2017-10-19",
        "many.csv:6: end 2017-10-20 10:00 CEST is outside the meeting's dates 2017-10-17..2017-10-19",
    ]


def test_unknown_columns_are_ignored_with_a_warning(fg_dlt: Meeting, write: Write) -> None:
    path = write("extra.csv", "title,date,start,end,Interpretation\nOpening,17.10.2017,09:30,11:00,EN/FR\n")
    result = load_agenda(path, fg_dlt)
    assert len(result.sessions) == 1
    (warning,) = result.warnings
    assert warning.where == "extra.csv:1"
    assert "'Interpretation' is not one we know and was ignored" in warning.what


def test_a_csv_needs_an_existing_meeting(write: Write) -> None:
    path = write("orphan.csv", "title,date,start,end\nOpening,17.10.2017,09:30,11:00\n")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, None)
    one_problem_matching(error, "orphan.csv", "create the meeting first", "'meeting:' block")


def test_a_file_that_is_not_utf8_names_the_line(fg_dlt: Meeting, write: Write) -> None:
    path = write("latin1.csv", "title;date;start;end\nR\xe9union;17.10.2017;09:30;11:00\n".encode("latin-1"))
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, fg_dlt)
    one_problem_matching(error, "latin1.csv:2:", "not UTF-8")
