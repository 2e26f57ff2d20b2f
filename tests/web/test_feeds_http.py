from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from floorbridge.adapters.web.snapshot import ServedFeed
from floorbridge.core.ports import RenderedFeed

from .conftest import V1, Served

URL = "/ical/fg-dlt-1.ics"


def events(body: bytes) -> dict[str, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


async def test_full_get_serves_the_calendar_with_validators(served: Served) -> None:
    r = await served.client.get(URL)
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert r.headers["ETag"].startswith('"')
    assert r.headers["Last-Modified"] == "Fri, 01 Sep 2017 08:00:00 GMT"
    assert r.headers["Vary"] == "Accept-Encoding"
    body = await r.read()
    assert set(events(body)) == {"opening@fg-dlt-1.floorbridge", "structure@fg-dlt-1.floorbridge",
                                 "usecases@fg-dlt-1.floorbridge"}


async def test_conditional_gets_answer_304(served: Served) -> None:
    first = await served.client.get(URL)
    etag = first.headers["ETag"]
    for header in ({"If-None-Match": etag}, {"If-None-Match": f'"nope", W/{etag}'}, {"If-None-Match": "*"},
                   {"If-Modified-Since": first.headers["Last-Modified"]},
                   {"If-Modified-Since": "Sat, 02 Sep 2017 08:00:00 GMT"}):
        r = await served.client.get(URL, headers=header)
        assert r.status == 304, header
        assert await r.read() == b""
        assert r.headers["ETag"] == etag
    for header in ({"If-None-Match": '"other"'}, {"If-Modified-Since": "Thu, 31 Aug 2017 08:00:00 GMT"},
                   {"If-Modified-Since": "yesterday"},
                   # If-None-Match wins over If-Modified-Since
                   {"If-None-Match": '"other"', "If-Modified-Since": first.headers["Last-Modified"]}):
        r = await served.client.get(URL, headers=header)
        assert r.status == 200, header


async def test_gzip_when_the_client_accepts_it(served: Served) -> None:
    plain = await (await served.client.get(URL, headers={"Accept-Encoding": "identity"})).read()
    r = await served.client.get(URL, headers={"Accept-Encoding": "gzip, deflate"}, auto_decompress=False)
    assert r.headers["Content-Encoding"] == "gzip"
    compressed = await r.read()
    assert len(compressed) < len(plain) and gzip.decompress(compressed) == plain
    gz_etag = r.headers["ETag"]
    assert gz_etag != (await served.client.get(URL, headers={"Accept-Encoding": "identity"})).headers["ETag"]
    assert (await served.client.get(URL, headers={"If-None-Match": gz_etag})).status == 304
    refused = await served.client.get(URL, headers={"Accept-Encoding": "gzip;q=0, identity"}, auto_decompress=False)
    assert "Content-Encoding" not in refused.headers


async def test_head_has_the_headers_and_no_body(served: Served) -> None:
    r = await served.client.head(URL)
    assert r.status == 200 and r.headers["ETag"] and await r.read() == b""


async def test_a_subscriber_sees_a_move_and_a_cancellation_after_publish(served: Served) -> None:
    before = await served.client.get(URL)
    old_etag = before.headers["ETag"]
    old = events(await before.read())
    moved = replace(V1[2], start=V1[2].start.replace(hour=12), end=V1[2].end.replace(hour=15))
    await served.publish([V1[0], moved], datetime(2017, 9, 5, 8, 0, tzinfo=UTC))

    stale = await served.client.get(URL, headers={"If-None-Match": old_etag})
    assert stale.status == 200, "a client holding the old version must get the new one"
    new = events(await stale.read())
    assert set(new) == set(old), "UIDs never change and the cancelled session stays in the feed"
    uid = "usecases@fg-dlt-1.floorbridge"
    assert new[uid]["SEQUENCE"] > old[uid]["SEQUENCE"]
    assert new[uid].decoded("DTSTART") != old[uid].decoded("DTSTART")
    cancelled = new["structure@fg-dlt-1.floorbridge"]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert cancelled["SEQUENCE"] > old["structure@fg-dlt-1.floorbridge"]["SEQUENCE"]


async def test_track_and_deadline_feeds(served: Served) -> None:
    track = await served.client.get("/ical/fg-dlt-1/tracks/working-group-1.ics")
    assert track.status == 200
    assert set(events(await track.read())) == {"usecases@fg-dlt-1.floorbridge"}
    deadlines = await served.client.get("/ical/fg-dlt-1/deadlines.ics")
    assert deadlines.status == 200
    cal = icalendar.Calendar.from_ical(await deadlines.read())
    [visa] = cal.walk("VEVENT")
    assert str(visa["SUMMARY"]).startswith("Visa support requests") or "Visa support requests" in str(visa["SUMMARY"])
    assert visa.walk("VALARM"), "deadlines carry alarms"


async def test_unknown_meeting_and_track_are_404_with_a_reason(served: Served) -> None:
    r = await served.client.get("/ical/wsis-2099.ics")
    assert r.status == 404 and "wsis-2099" in await r.text()
    r = await served.client.get("/ical/fg-dlt-1/tracks/no-such-track.ics")
    assert r.status == 404 and "tracks/no-such-track" in await r.text()


async def test_storage_failure_keeps_the_last_good_version_served(served: Served) -> None:
    await served.store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{served.db}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - test set-up
    with pytest.raises(Exception, match="no such table"):
        await served.snapshots.refresh()
    r = await served.client.get(URL)
    assert r.status == 200 and len(events(await r.read())) == 3


def test_a_site_public_over_https_sends_hsts_with_its_feeds_too() -> None:
    body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    feed = RenderedFeed("all", body, gzip.compress(body), '"v1"', datetime(2025, 7, 7, tzinfo=UTC))
    for variant in (ServedFeed.of(feed, https=True).plain, ServedFeed.of(feed, https=True).not_modified):
        assert b"\r\nStrict-Transport-Security: max-age=31536000\r\n" in variant.head
        assert b"\r\nX-Content-Type-Options: nosniff\r\n" in variant.head
    assert b"Strict-Transport-Security" not in ServedFeed.of(feed).plain.head  # plain http: no HSTS
