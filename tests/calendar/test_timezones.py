"""Wall-clock times across a DST switch, zones without DST, and the VTIMEZONE that describes them."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar
import pytest
import pytz
import vobject
from dateutil import tz as dateutil_tz

from floorbridge.calendar.feeds import render_feeds
from floorbridge.calendar.vtimezone import vtimezone
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import publish

from .conftest import PUBLISHED_V1, Seen, make_meeting, session, uid

BASE = "https://floorbridge.example.org"
FRI, MON = date(2025, 10, 24), date(2025, 10, 27)


def feed_for(meeting: Meeting, *sessions_at: tuple[str, date, time]) -> bytes:
    sessions = [session(meeting, sid, day, at) for sid, day, at in sessions_at]
    version = publish(meeting.id, None, sessions, [], now=PUBLISHED_V1)
    return render_feeds(meeting, version, base_url=BASE)["all"].body


def the_vtimezone(body: bytes, tzid: str) -> icalendar.Timezone:
    found = [t for t in icalendar.Calendar.from_ical(body).timezones if t.tz_name == tzid]
    assert len(found) == 1
    return found[0]


def zone_from_feed(body: bytes, tzid: str) -> tzinfo:
    """The zone as a client that trusts the VTIMEZONE (not its own tz database) builds it."""
    vtz = the_vtimezone(body, tzid).to_ical().decode()
    built: tzinfo | None = dateutil_tz.tzical(io.StringIO(vtz)).get(tzid)
    assert built is not None
    return built


def test_nine_o_clock_on_both_sides_of_the_october_switch(
        meeting: Meeting, parse: Callable[[bytes], dict[str, Seen]]) -> None:
    body = feed_for(meeting, ("fri", FRI, time(9)), ("mon", MON, time(9)))
    seen = parse(body)
    assert seen[uid("fri")].start == datetime(2025, 10, 24, 7, 0, tzinfo=UTC)
    assert seen[uid("mon")].start == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)
    assert seen[uid("mon")].end == datetime(2025, 10, 27, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("home", "fri", "mon"), [
    # New York is still on summer time until 2 November: Geneva's switch moves the session an hour.
    ("America/New_York", datetime(2025, 10, 24, 3, 0), datetime(2025, 10, 27, 4, 0)),
    ("Asia/Tokyo", datetime(2025, 10, 24, 16, 0), datetime(2025, 10, 27, 17, 0)),
])
def test_a_subscriber_elsewhere_sees_their_own_local_time(
        meeting: Meeting, parse: Callable[[bytes], dict[str, Seen]], home: str, fri: datetime,
        mon: datetime) -> None:
    seen = parse(feed_for(meeting, ("fri", FRI, time(9)), ("mon", MON, time(9))))
    for sid, expected in (("fri", fri), ("mon", mon)):
        start = seen[uid(sid)].start
        assert isinstance(start, datetime)
        assert start.astimezone(ZoneInfo(home)).replace(tzinfo=None) == expected
        assert start.astimezone(pytz.timezone(home)).replace(tzinfo=None) == expected


def test_vtimezone_describes_the_switch(meeting: Meeting) -> None:
    body = feed_for(meeting, ("fri", FRI, time(9)), ("mon", MON, time(9)))
    vtz = the_vtimezone(body, "Europe/Zurich")
    daylight, standard = vtz.walk("DAYLIGHT"), vtz.walk("STANDARD")
    assert [d.decoded("TZOFFSETTO") for d in daylight] == [timedelta(hours=2)]
    switch = [s for s in standard if s.decoded("TZOFFSETFROM") != s.decoded("TZOFFSETTO")]
    assert len(switch) == 1
    # RFC 5545: the onset is written in the wall time being left, 03:00 CEST on 26 October.
    assert switch[0].decoded("DTSTART") == datetime(2025, 10, 26, 3, 0)
    assert switch[0].decoded("TZOFFSETFROM") == timedelta(hours=2)
    assert switch[0].decoded("TZOFFSETTO") == timedelta(hours=1)
    assert switch[0]["TZNAME"] == "CET"
    assert [d["TZNAME"] for d in daylight] == ["CEST"]


def test_vtimezone_alone_gives_the_right_offsets(meeting: Meeting) -> None:
    body = feed_for(meeting, ("fri", FRI, time(9)), ("mon", MON, time(9)))
    for built in (zone_from_feed(body, "Europe/Zurich"),
                  the_vtimezone(body, "Europe/Zurich").to_tz(lookup_tzid=False)):
        assert datetime(2025, 10, 24, 9, tzinfo=built).utcoffset() == timedelta(hours=2)
        assert datetime(2025, 10, 27, 9, tzinfo=built).utcoffset() == timedelta(hours=1)
    # vobject builds its tzinfo from the VTIMEZONE in the file, not from a tz database.
    cal = vobject.readOne(body.decode())
    start = next(e.dtstart.value for e in cal.vevent_list if e.uid.value == uid("mon"))
    assert start.astimezone(UTC) == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("season", "day", "offset", "component"), [
    ("summer", date(2025, 6, 16), timedelta(hours=2), "DAYLIGHT"),
    ("winter", date(2025, 2, 10), timedelta(hours=1), "STANDARD"),
])
def test_zurich_in_one_season(parse: Callable[[bytes], dict[str, Seen]], season: str, day: date,
                              offset: timedelta, component: str) -> None:
    meeting = make_meeting(start=day, end=day + timedelta(days=2))
    body = feed_for(meeting, (season, day, time(10)))
    assert parse(body)[uid(season)].start == datetime.combine(day, time(10), UTC) - offset
    vtz = the_vtimezone(body, "Europe/Zurich")
    observances = vtz.walk("DAYLIGHT") + vtz.walk("STANDARD")
    assert [o.name for o in observances] == [component]
    assert observances[0].decoded("TZOFFSETTO") == offset


@pytest.mark.parametrize(("timezone", "offset"), [("Asia/Tokyo", 9), ("Africa/Nairobi", 3)])
def test_a_zone_without_dst(parse: Callable[[bytes], dict[str, Seen]], timezone: str, offset: int) -> None:
    meeting = make_meeting(timezone=timezone)
    body = feed_for(meeting, ("fri", FRI, time(9)), ("mon", MON, time(9)))
    seen = parse(body)
    assert seen[uid("fri")].start == datetime(2025, 10, 24, 9 - offset, tzinfo=UTC)
    assert seen[uid("mon")].start == datetime(2025, 10, 27, 9 - offset, tzinfo=UTC)
    vtz = the_vtimezone(body, timezone)
    assert vtz.walk("DAYLIGHT") == []
    (standard,) = vtz.walk("STANDARD")
    assert standard.decoded("TZOFFSETFROM") == standard.decoded("TZOFFSETTO") == timedelta(hours=offset)
    assert icalendar.Calendar.from_ical(body)["X-WR-TIMEZONE"] == timezone
    assert datetime(2025, 10, 27, 9, tzinfo=zone_from_feed(body, timezone)).utcoffset() == timedelta(hours=offset)


@pytest.mark.parametrize("name", [
    "Europe/Zurich", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Tehran",
    "America/Santiago", "Africa/Casablanca", "Europe/Dublin",
])
def test_vtimezone_matches_the_tz_database_hour_by_hour_for_a_year(name: str) -> None:
    zone = pytz.timezone(name)
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    text = vtimezone(name, zone, first, last).to_ical().decode()
    built = dateutil_tz.tzical(io.StringIO(text)).get(name)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment < datetime(2026, 1, 1, tzinfo=UTC):
        assert moment.astimezone(built).utcoffset() == moment.astimezone(zone).utcoffset(), (name, moment)
        moment += timedelta(minutes=30)


def test_feed_with_a_deadline_long_before_the_meeting_covers_it(meeting: Meeting) -> None:
    from floorbridge.core.deadline import Deadline, DeadlineKind
    from floorbridge.core.ids import DeadlineId

    # Due in March, before the spring switch, for an October meeting.
    early = Deadline(DeadlineId("early"), DeadlineKind.CONTRIBUTIONS, "Contributions",
                     datetime(2025, 3, 20, 11, 0, tzinfo=UTC))
    version = publish(meeting.id, None, [session(meeting, "fri", FRI, time(9))], [early], now=PUBLISHED_V1)
    body = render_feeds(meeting, version, base_url=BASE)["deadlines"].body
    built = zone_from_feed(body, "Europe/Zurich")
    assert datetime(2025, 3, 20, 12, tzinfo=built).utcoffset() == timedelta(hours=1)
    assert datetime(2025, 10, 24, 9, tzinfo=built).utcoffset() == timedelta(hours=2)
