"""The public feeds of one version: which feeds exist, what they hold, and how they are encoded."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import icalendar
import pytest
import vobject

from floorbridge.calendar.feeds import render_feeds
from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import AgendaVersion

from .conftest import PUBLISHED_V1, Seen, make_meeting, uid

BASE = "https://floorbridge.example.org"


def lines(body: bytes) -> list[bytes]:
    assert body.endswith(b"\r\n")
    return body[:-2].split(b"\r\n")


def calendar(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


def test_one_feed_for_everything_each_track_and_the_deadlines(meeting: Meeting, v1: AgendaVersion) -> None:
    feeds = render_feeds(meeting, v1, base_url=BASE)
    assert set(feeds) == {"all", "tracks/plenary", "tracks/working-group-1", "tracks/side-events", "deadlines"}
    assert all(f.key == k for k, f in feeds.items())


def test_each_feed_holds_its_sessions(meeting: Meeting, v1: AgendaVersion,
                                      parse: Callable[[bytes], dict[str, Seen]]) -> None:
    feeds = render_feeds(meeting, v1, base_url=BASE)
    assert set(parse(feeds["all"].body)) == {uid(s) for s in ("opening", "wg1-a", "wg1-b", "side", "closing")}
    assert set(parse(feeds["tracks/plenary"].body)) == {uid("opening"), uid("closing")}
    assert set(parse(feeds["tracks/working-group-1"].body)) == {uid("wg1-a"), uid("wg1-b")}
    assert set(parse(feeds["tracks/side-events"].body)) == {uid("side")}
    assert set(parse(feeds["deadlines"].body)) == {
        "deadline-registration@wsis-20.floorbridge", "deadline-slots@wsis-20.floorbridge"}


def test_served_bytes_gzip_etag_and_last_modified(meeting: Meeting, v1: AgendaVersion) -> None:
    feeds = render_feeds(meeting, v1, base_url=BASE)
    again = render_feeds(meeting, v1, base_url=BASE)
    for key, feed in feeds.items():
        assert gzip.decompress(feed.gzipped) == feed.body
        assert re.fullmatch(r'"[0-9a-f]{32}"', feed.etag), feed.etag
        assert feed.last_modified == PUBLISHED_V1
        assert feed.content_type == "text/calendar; charset=utf-8"
        assert again[key] == feed, f"{key} is not rendered deterministically"
    assert len({f.etag for f in feeds.values()}) == len(feeds)


def test_output_does_not_depend_on_input_order(meeting: Meeting, v1: AgendaVersion) -> None:
    shuffled = replace(v1, sessions=tuple(reversed(v1.sessions)), deadlines=tuple(reversed(v1.deadlines)))
    assert render_feeds(meeting, shuffled, base_url=BASE) == render_feeds(meeting, v1, base_url=BASE)


def test_events_are_ordered_by_start_then_uid(meeting: Meeting, v1: AgendaVersion) -> None:
    # opening (Fri 09:00) and a second session at the same instant: the UID breaks the tie.
    twin = replace(v1.sessions[0], session=replace(v1.sessions[0].session, id=SessionId("aaa-twin"), track="Plenary"))
    version = replace(v1, sessions=(*v1.sessions, twin))
    body = render_feeds(meeting, version, base_url=BASE)["all"].body
    uids = [str(e["UID"]) for e in calendar(body).events]
    assert uids == [uid(s) for s in ("aaa-twin", "opening", "wg1-a", "wg1-b", "side", "closing")]


def test_calendar_properties(meeting: Meeting, v1: AgendaVersion) -> None:
    feeds = render_feeds(meeting, v1, base_url=BASE + "/", refresh_minutes=30)
    for key, name in (("all", "WSIS+20 High-Level Event"),
                      ("tracks/working-group-1", "WSIS+20 High-Level Event — Working Group 1"),
                      ("deadlines", "WSIS+20 High-Level Event — Deadlines")):
        body = feeds[key].body
        cal = calendar(body)
        assert cal["VERSION"] == "2.0"
        assert cal["PRODID"] == "-//floorbridge//floorbridge 0.1//EN"
        assert cal["CALSCALE"] == "GREGORIAN"
        assert cal["METHOD"] == "PUBLISH"
        assert cal["X-WR-CALNAME"] == name
        assert cal["NAME"] == name
        assert cal["X-WR-TIMEZONE"] == "Europe/Zurich"
        assert "WSIS+20 High-Level Event" in str(cal["X-WR-CALDESC"])
        assert "version 1" in str(cal["DESCRIPTION"])
        raw = lines(body)
        assert b"REFRESH-INTERVAL;VALUE=DURATION:PT30M" in raw
        assert b"X-PUBLISHED-TTL:PT30M" in raw
        path = "/ical/wsis-20.ics" if key == "all" else f"/ical/wsis-20/{key}.ics"
        assert str(cal["SOURCE"]) == f"{BASE}{path}"


def test_a_refresh_interval_below_one_minute_is_refused(meeting: Meeting, v1: AgendaVersion) -> None:
    with pytest.raises(InvalidInput) as caught:
        render_feeds(meeting, v1, base_url=BASE, refresh_minutes=0)
    assert caught.value.problems[0].where == "refresh_minutes"


def test_session_event_details(meeting: Meeting, v1: AgendaVersion) -> None:
    body = render_feeds(meeting, v1, base_url=BASE)["all"].body
    events = {str(e["UID"]): e for e in calendar(body).events}
    opening = events[uid("opening")]
    assert opening["DTSTART"].params["TZID"] == "Europe/Zurich"
    assert opening.decoded("DTSTART").replace(tzinfo=None) == datetime(2025, 10, 24, 9, 0)
    assert opening.decoded("DTSTAMP") == PUBLISHED_V1
    assert opening.decoded("LAST-MODIFIED") == PUBLISHED_V1
    assert opening.decoded("SEQUENCE") == 0
    assert opening["STATUS"] == "CONFIRMED"
    assert opening["TRANSP"] == "OPAQUE"
    assert opening["LOCATION"] == "Room 1, CICG, Geneva"
    assert opening.categories == ["Plenary"]
    description = str(opening["DESCRIPTION"])
    assert "High-level opening of the event." in description
    assert "Chair: Doreen Bogdan-Martin" in description
    assert "Draft outcome: https://docs.example.org/outcome.pdf" in description
    assert "Remote participation (Zoom): https://meet.example.org/wsis" in description
    assert str(opening["URL"]) == "https://meet.example.org/wsis"
    assert str(opening["ATTACH"]) == "https://docs.example.org/outcome.pdf"
    conference = opening["CONFERENCE"]
    assert str(conference) == "https://meet.example.org/wsis"
    assert conference.params["VALUE"] == "URI"
    assert conference.params["LABEL"] == "Zoom"
    assert set(conference.params["FEATURE"]) == {"VIDEO", "AUDIO"}
    # A session's own link wins over the meeting-wide one.
    assert str(events[uid("side")]["URL"]) == "https://webex.example.org/side"
    assert events[uid("closing")]["STATUS"] == "TENTATIVE"


def test_without_any_remote_link_the_event_points_at_the_meeting(v1: AgendaVersion) -> None:
    from floorbridge.core.meeting import RemoteParticipation


    meeting = make_meeting(remote=RemoteParticipation())
    body = render_feeds(meeting, v1, base_url=BASE)["all"].body
    opening = next(e for e in calendar(body).events if e["UID"] == uid("opening"))
    assert str(opening["URL"]) == "https://www.itu.int/wsis"
    assert "CONFERENCE" not in opening
    assert "Remote participation" not in str(opening["DESCRIPTION"])


def test_special_characters_and_scripts_survive_every_parser(
        meeting: Meeting, v1: AgendaVersion, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    body = render_feeds(meeting, v1, base_url=BASE)["all"].body
    seen = parse(body)
    assert seen[uid("opening")].summary == "Opening, welcome; and\nhousekeeping"
    assert seen[uid("wg1-a")].summary == "Доступ к цифровым услугам"
    assert seen[uid("wg1-b")].summary == "الشمول الرقمي"
    assert seen[uid("side")].summary == "数字合作 side event"
    assert b"SUMMARY:Opening\\, welcome\\; and\\nhousekeeping" in lines(body)


def test_lines_are_crlf_and_folded_at_75_octets(meeting: Meeting, v1: AgendaVersion) -> None:
    long_title = "Сессия по вопросам цифрового сотрудничества, 数字合作; التعاون الرقمي " * 4
    first = replace(v1.sessions[0], session=replace(v1.sessions[0].session, title=long_title))
    version = replace(v1, sessions=(first, *v1.sessions[1:]))
    for feed in render_feeds(meeting, version, base_url=BASE).values():
        body = feed.body
        assert b"\n" not in body.replace(b"\r\n", b""), "bare LF"
        assert b"\r" not in body.replace(b"\r\n", b""), "bare CR"
        body.decode("utf-8")  # folding must not split a multi-byte character
        for line in lines(body):
            assert len(line) <= 75, line
            line.decode("utf-8")
    body = render_feeds(meeting, version, base_url=BASE)["all"].body
    summary = next(e for e in calendar(body).events if e["UID"] == uid("opening"))["SUMMARY"]
    assert summary == long_title.strip()


def test_control_characters_are_dropped(meeting: Meeting, v1: AgendaVersion,
                                        parse: Callable[[bytes], dict[str, Seen]]) -> None:
    first = replace(v1.sessions[0], session=replace(v1.sessions[0].session, title="Bell\x07 and\r\nbreak"))
    version = replace(v1, sessions=(first,))
    seen = parse(render_feeds(meeting, version, base_url=BASE)["all"].body)
    assert seen[uid("opening")].summary == "Bell and\nbreak"


def test_dtstamp_is_utc_even_when_published_at_is_not(meeting: Meeting, v1: AgendaVersion) -> None:
    import pytz

    local = PUBLISHED_V1.astimezone(pytz.timezone("Asia/Tokyo"))
    body = render_feeds(meeting, replace(v1, published_at=local), base_url=BASE)["all"].body
    assert b"DTSTAMP:20250901T120000Z" in lines(body)
    assert datetime(2025, 9, 1, 12, tzinfo=UTC) == calendar(body).events[0].decoded("DTSTAMP")


def test_source_is_where_the_web_adapter_serves_the_feed(meeting: Meeting, v1: AgendaVersion) -> None:
    from floorbridge.adapters.web.links import feed_links

    for key, feed in render_feeds(meeting, v1, base_url=BASE).items():
        assert str(calendar(feed.body)["SOURCE"]) == feed_links(BASE, meeting.id, key)["https"]


def test_a_multi_line_meeting_description_and_a_name_with_commas_are_escaped(v1: AgendaVersion) -> None:
    meeting = make_meeting(
        title="WSIS+20, High-Level Event; Geneva",
        description="Hybrid meeting.\nRemote delegates register first,\nthen join from the link.",
    )
    body = render_feeds(meeting, v1, base_url=BASE)["all"].body
    assert b"X-WR-CALNAME:WSIS+20\\, High-Level Event\\; Geneva" in lines(body)
    # X- properties are TEXT by default (RFC 5545 §3.8.8.2) and NAME is TEXT (RFC 7986); icalendar
    # reads unknown properties raw, vobject unescapes them as a calendar client does.
    assert str(calendar(body)["DESCRIPTION"]).endswith("Remote delegates register first,\nthen join from the link.")
    parsed = vobject.readOne(body.decode("utf-8"))
    assert parsed.contents["x-wr-caldesc"][0].value == str(calendar(body)["DESCRIPTION"])
    assert parsed.contents["x-wr-calname"][0].value == "WSIS+20, High-Level Event; Geneva"
    assert parsed.contents["name"][0].value == "WSIS+20, High-Level Event; Geneva"
