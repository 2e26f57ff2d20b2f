"""A delegate's speaking-slot feed, read back by four independent parsers: nothing while the
request waits, the approved slot at its wall-clock time in Geneva (on either side of the end of
summer time), a growing SEQUENCE when it changes, and STATUS:CANCELLED once it is withdrawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import icalendar
import pytest
import vobject

from floorbridge.calendar.slots import render_slot_calendar, slot_uid
from floorbridge.core.agenda import Session
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.slots import Mode, ProtocolRank, SlotForm, SlotRequest, SlotStatus, Stakeholder, review

from .conftest import Seen

RECEIVED = datetime(2025, 10, 1, 9, 30, tzinfo=UTC)
DECIDED = datetime(2025, 10, 18, 7, 0, tzinfo=UTC)
UID = "slot-HLS-K7Q2MZ@floorbridge"


def by_id(sessions: list[Session], sid: str) -> Session:
    return next(s for s in sessions if s.id == sid)


def pending(mode: Mode = Mode.REMOTE, session: str = "wg1-b") -> SlotRequest:
    form = SlotForm("H.E. Ms. Ama Mensah; \"Minister\"", "Minister of Communications, Digitalisation",
                    "Ghana", Stakeholder.GOVERNMENT, ProtocolRank.MINISTER, SessionId(session), mode, "fr")
    return SlotRequest("HLS-K7Q2MZ", "hls", MeetingId("wsis-20"), "web:abc", form, RECEIVED, updated_at=RECEIVED,
                       feed_token="t" * 43)


def approved(meeting: Meeting, at: time, *, mode: Mode = Mode.REMOTE, session: str = "wg1-b",
             day: int = 27, when: datetime = DECIDED) -> SlotRequest:
    start = meeting.localize(datetime(2025, 10, day).date(), at)
    return review(pending(mode, session), SlotStatus.APPROVED, when, session=SessionId(session), order=4,
                  start=start.astimezone(UTC), minutes=3)


def test_nothing_while_the_request_waits_for_review(meeting: Meeting, working_v1: list[Session],
                                                    parse: Callable[[bytes], dict[str, Seen]]) -> None:
    body = render_slot_calendar(meeting, pending(), by_id(working_v1, "wg1-b"))
    assert parse(body) == {}
    cal = icalendar.Calendar.from_ical(body)
    assert [c.name for c in cal.subcomponents] == ["VTIMEZONE"]  # still a valid calendar
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Zurich"
    waitlisted = review(pending(), SlotStatus.WAITLISTED, DECIDED, reason="the segment is full")
    assert parse(render_slot_calendar(meeting, waitlisted, by_id(working_v1, "wg1-b"))) == {}


@pytest.mark.parametrize(("day", "offset"), [(24, 2), (27, 1)])  # Friday: summer time; Monday: winter time
def test_the_approved_slot_at_its_wall_clock_time_in_geneva(
        meeting: Meeting, working_v1: list[Session], parse: Callable[[bytes], dict[str, Seen]],
        day: int, offset: int) -> None:
    session = "wg1-a" if day == 24 else "wg1-b"
    slot = approved(meeting, time(11, 12) if day == 24 else time(9, 12), session=session, day=day)
    body = render_slot_calendar(meeting, slot, by_id(working_v1, session))
    seen = parse(body)[UID]
    hour = 11 if day == 24 else 9
    local = meeting.localize(datetime(2025, 10, day).date(), time(hour, 12))
    assert seen.start == local and seen.end == local + timedelta(minutes=3)
    assert seen.start.utcoffset() == timedelta(hours=offset)  # type: ignore[union-attr]
    assert seen.summary == f"Your statement: {by_id(working_v1, session).title}"
    assert seen.status == "CONFIRMED"
    lines = body.split(b"\r\n")
    assert f"DTSTART;TZID=Europe/Zurich:202510{day}T{hour:02d}1200".encode() in lines  # wall clock, with TZID


def test_the_description_has_the_order_minutes_mode_and_the_remote_link(
        meeting: Meeting, working_v1: list[Session]) -> None:
    remote = approved(meeting, time(9, 12))
    [event] = icalendar.Calendar.from_ical(render_slot_calendar(meeting, remote, by_id(working_v1, "wg1-b"))).walk(
        "VEVENT")
    text = str(event["DESCRIPTION"])
    for expected in ("Speaking order: 4", "Time allotted: 3 minutes", "Mode: remote", "Language: fr",
                     "Remote participation (Zoom): https://meet.example.org/wsis", "Reference: HLS-K7Q2MZ",
                     "H.E. Ms. Ama Mensah; \"Minister\", Minister of Communications, Digitalisation (Ghana)"):
        assert expected in text
    assert str(event["URL"]) == "https://meet.example.org/wsis" and "LOCATION" not in event
    assert event.walk("VALARM")  # a reminder before the statement

    in_room = approved(meeting, time(13, 30), mode=Mode.IN_ROOM, session="side")
    [event] = icalendar.Calendar.from_ical(render_slot_calendar(meeting, in_room, by_id(working_v1, "side"))).walk(
        "VEVENT")
    assert "Mode: in the room" in str(event["DESCRIPTION"]) and "Remote participation" not in str(event["DESCRIPTION"])
    assert str(event["LOCATION"]) == "Room C, CICG, Geneva" and "URL" not in event


def test_the_uid_stays_and_the_sequence_grows_when_the_slot_changes(
        meeting: Meeting, working_v1: list[Session], parse: Callable[[bytes], dict[str, Seen]]) -> None:
    session = by_id(working_v1, "wg1-b")
    first = approved(meeting, time(9, 12))
    moved = review(first, SlotStatus.APPROVED, DECIDED + timedelta(hours=5), session=SessionId("wg1-b"), order=2,
                   start=meeting.localize(datetime(2025, 10, 27).date(), time(9, 3)).astimezone(UTC), minutes=4)
    a, b = parse(render_slot_calendar(meeting, first, session))[UID], parse(render_slot_calendar(meeting, moved,
                                                                                                 session))[UID]
    assert a.uid == b.uid == slot_uid(first) == UID
    assert a.sequence is not None and b.sequence is not None and b.sequence > a.sequence
    assert (b.start.hour, b.start.minute) == (9, 3)  # type: ignore[union-attr]
    # Rendering is deterministic: the same request gives the same bytes (and the same ETag).
    assert render_slot_calendar(meeting, moved, session) == render_slot_calendar(meeting, moved, session)


def test_withdrawn_after_approval_is_cancelled_at_the_slots_time(
        meeting: Meeting, working_v1: list[Session], parse: Callable[[bytes], dict[str, Seen]]) -> None:
    session = by_id(working_v1, "wg1-b")
    slot = approved(meeting, time(9, 12))
    withdrawn = replace(slot, status=SlotStatus.WITHDRAWN, updated_at=DECIDED + timedelta(days=1))
    before, after = parse(render_slot_calendar(meeting, slot, session))[UID], parse(
        render_slot_calendar(meeting, withdrawn, session))[UID]
    assert after.status == "CANCELLED" and after.summary.startswith("Cancelled: Your statement: ")
    assert after.start == before.start and after.sequence > before.sequence  # type: ignore[operator]


def test_rejected_is_cancelled_and_withdrawn_while_pending_shows_nothing(
        meeting: Meeting, working_v1: list[Session], parse: Callable[[bytes], dict[str, Seen]]) -> None:
    session = by_id(working_v1, "wg1-b")
    slot = approved(meeting, time(9, 12))
    rejected = review(slot, SlotStatus.REJECTED, DECIDED + timedelta(days=1), reason="protocol; time")
    seen = parse(render_slot_calendar(meeting, rejected, session))[UID]
    assert seen.status == "CANCELLED" and seen.start == session.start  # the slot is gone: the session's time
    assert seen.sequence > parse(render_slot_calendar(meeting, slot, session))[UID].sequence  # type: ignore[operator]
    never = replace(pending(), status=SlotStatus.WITHDRAWN, updated_at=DECIDED)
    assert parse(render_slot_calendar(meeting, never, session)) == {}


def test_text_is_escaped_and_vobject_reads_the_timezone(meeting: Meeting, working_v1: list[Session]) -> None:
    slot = approved(meeting, time(9, 12))
    body = render_slot_calendar(meeting, slot, by_id(working_v1, "wg1-b"))
    assert b"Ms. Ama Mensah\\; \"Minister\"\\, Minister of Communications\\, Digitalisation" in body.replace(
        b"\r\n ", b"")
    cal = vobject.readOne(body.decode())
    start = cal.vevent.dtstart.value
    assert start.tzinfo is not None and start.utcoffset() == timedelta(hours=1)
    assert cal.vtimezone.tzid.value == "Europe/Zurich"
