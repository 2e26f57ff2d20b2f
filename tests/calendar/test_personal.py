"""A feed of the sessions one delegate chose, built from the same blocks as the public feeds."""

from __future__ import annotations

from collections.abc import Callable

import icalendar

from floorbridge.calendar.feeds import build_calendar, render_feeds, render_personal_feed, to_bytes
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import AgendaVersion

from .conftest import Seen, uid


def test_only_the_chosen_sessions_and_the_deadlines_when_asked(
        meeting: Meeting, v1: AgendaVersion, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    body = render_personal_feed(meeting, v1, ["wg1-b", "opening", "not-a-session"], deadlines=True,
                                name="My WSIS+20", source_url="https://fb.example.org/me/abc.ics")
    assert set(parse(body)) == {uid("opening"), uid("wg1-b"), "deadline-registration@wsis-20.floorbridge",
                                "deadline-slots@wsis-20.floorbridge"}
    cal = icalendar.Calendar.from_ical(body)
    assert cal["X-WR-CALNAME"] == "My WSIS+20"
    assert str(cal["SOURCE"]) == "https://fb.example.org/me/abc.ics"
    without = render_personal_feed(meeting, v1, ["wg1-b"], deadlines=False, name="Mine")
    assert set(parse(without)) == {uid("wg1-b")}


def test_personal_events_are_the_public_events(meeting: Meeting, v1: AgendaVersion) -> None:
    """Same UID and content, so a delegate subscribed to both sees one event, not two versions of it."""
    public = {str(e["UID"]): e.to_ical() for e in icalendar.Calendar.from_ical(
        render_feeds(meeting, v1, base_url="https://fb.example.org")["all"].body).events}
    mine = {str(e["UID"]): e.to_ical() for e in icalendar.Calendar.from_ical(
        render_personal_feed(meeting, v1, ["opening"], deadlines=False, name="Mine")).events}
    assert mine == {uid("opening"): public[uid("opening")]}


def test_sessions_and_deadlines_are_merged_in_time_order(meeting: Meeting, v1: AgendaVersion) -> None:
    cal = build_calendar(meeting, v1, v1.sessions[:2], v1.deadlines, name="Mixed", refresh_minutes=15)
    uids = [str(e["UID"]) for e in cal.events]
    assert uids == ["deadline-registration@wsis-20.floorbridge", "deadline-slots@wsis-20.floorbridge",
                    uid("opening"), uid("wg1-a")]
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT15M" in to_bytes(cal).split(b"\r\n")
