"""What a subscribed calendar sees when it fetches the feed again after a new version.

Clients match events by UID and apply an update when SEQUENCE (or, for equal SEQUENCE,
LAST-MODIFIED/DTSTAMP) says it is newer; an event that vanishes from a feed is silently
dropped by some clients and kept by others, so cancellations must stay in the feed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import icalendar

from floorbridge.calendar.feeds import render_feeds
from floorbridge.core.meeting import Meeting

from .conftest import PUBLISHED_V1, PUBLISHED_V2, Scenario, Seen, uid

BASE = "https://floorbridge.example.org"


def feeds(meeting: Meeting, scenario: Scenario, key: str = "all") -> tuple[bytes, bytes]:
    before = render_feeds(meeting, scenario.v1, base_url=BASE)[key].body
    after = render_feeds(meeting, scenario.v2, base_url=BASE)[key].body
    return before, after


def test_the_same_events_are_still_there(meeting: Meeting, scenario: Scenario,
                                        parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b) for b in feeds(meeting, scenario))
    assert set(before) == set(after) == {uid(s) for s in ("opening", "wg1-a", "wg1-b", "side", "closing")}


def test_moved_in_time_gets_new_times_and_a_higher_sequence(
        meeting: Meeting, scenario: Scenario, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b)[uid("wg1-a")] for b in feeds(meeting, scenario))
    assert before.start == datetime(2025, 10, 24, 9, 0, tzinfo=UTC)  # 11:00 CEST
    assert after.start == datetime(2025, 10, 24, 9, 30, tzinfo=UTC)
    assert after.end == datetime(2025, 10, 24, 10, 30, tzinfo=UTC)
    assert before.sequence is not None and after.sequence is not None
    assert after.sequence > before.sequence


def test_moved_room_bumps_sequence_and_shows_the_new_room(
        meeting: Meeting, scenario: Scenario, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b)[uid("wg1-b")] for b in feeds(meeting, scenario))
    assert before.start == after.start
    assert before.sequence is not None and after.sequence is not None
    assert after.sequence > before.sequence
    _, body = feeds(meeting, scenario)
    event = next(e for e in icalendar.Calendar.from_ical(body).walk("VEVENT") if e["UID"] == uid("wg1-b"))
    assert event["LOCATION"] == "Room 3, CICG, Geneva"


def test_removed_session_stays_as_cancelled(meeting: Meeting, scenario: Scenario,
                                           parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b)[uid("side")] for b in feeds(meeting, scenario))
    assert before.status == "CONFIRMED"
    assert after.status == "CANCELLED"
    assert after.summary == "Cancelled: 数字合作 side event"
    assert after.start == before.start
    assert before.sequence is not None and after.sequence is not None
    assert after.sequence > before.sequence


def test_cancelled_event_frees_the_time_and_drops_the_join_link(meeting: Meeting, scenario: Scenario) -> None:
    _, body = feeds(meeting, scenario)
    event = next(e for e in icalendar.Calendar.from_ical(body).walk("VEVENT") if e["UID"] == uid("side"))
    assert event["TRANSP"] == "TRANSPARENT"
    assert "CONFERENCE" not in event
    assert str(event["DESCRIPTION"]).startswith("This session has been cancelled.")


def test_renamed_keeps_its_sequence_but_shows_the_new_title(
        meeting: Meeting, scenario: Scenario, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b)[uid("closing")] for b in feeds(meeting, scenario))
    assert before.summary == "Closing"
    assert after.summary == "Closing and adoption of the outcome"
    assert after.sequence == before.sequence


def test_last_modified_moves_only_for_changed_events(meeting: Meeting, scenario: Scenario) -> None:
    before, after = (
        {str(e["UID"]): e for e in icalendar.Calendar.from_ical(b).walk("VEVENT")}
        for b in feeds(meeting, scenario)
    )
    for sid in ("wg1-a", "wg1-b", "side", "closing"):
        assert before[uid(sid)].decoded("LAST-MODIFIED") == PUBLISHED_V1
        assert after[uid(sid)].decoded("LAST-MODIFIED") == PUBLISHED_V2, sid
    assert after[uid("opening")].decoded("LAST-MODIFIED") == PUBLISHED_V1
    assert after[uid("opening")]["SEQUENCE"] == before[uid("opening")]["SEQUENCE"]
    assert after[uid("opening")].decoded("DTSTAMP") == PUBLISHED_V2


def test_track_feed_keeps_its_cancelled_session(meeting: Meeting, scenario: Scenario,
                                               parse: Callable[[bytes], dict[str, Seen]]) -> None:
    _, after = feeds(meeting, scenario, "tracks/side-events")
    assert parse(after)[uid("side")].status == "CANCELLED"


def test_a_new_version_changes_the_etag_of_changed_feeds_only(meeting: Meeting, scenario: Scenario) -> None:
    old = render_feeds(meeting, scenario.v1, base_url=BASE)
    new = render_feeds(meeting, scenario.v2, base_url=BASE)
    assert old.keys() == new.keys()
    for key in old:
        # Every feed names its version in its description, so every ETag changes.
        assert old[key].etag != new[key].etag, key
        assert new[key].last_modified == PUBLISHED_V2


def test_moved_deadline_gets_a_higher_sequence(meeting: Meeting, scenario: Scenario,
                                              parse: Callable[[bytes], dict[str, Seen]]) -> None:
    before, after = (parse(b) for b in feeds(meeting, scenario, "deadlines"))
    key = "deadline-registration@wsis-20.floorbridge"
    assert str(before[key].start) == "2025-10-10"
    assert str(after[key].start) == "2025-10-17"
    old, new = before[key].sequence, after[key].sequence
    assert old is not None and new is not None
    assert new > old
