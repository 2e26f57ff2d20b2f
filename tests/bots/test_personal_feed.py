"""The personal feed behind the `ical` command, served over HTTP and read by a calendar parser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import icalendar
import pytest
from aiohttp.test_utils import TestClient, TestServer

from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.personal import PersonalFeeds
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots

from .conftest import PRIVATE, World


@pytest.fixture
async def client(world: World) -> AsyncIterator[TestClient]:
    snapshots = Snapshots(world.store, 60)
    await snapshots.refresh()
    app = create_app(snapshots, WebOptions("https://fb.example.org"), personal_feeds=PersonalFeeds(world.chats))
    async with TestClient(TestServer(app)) as c:
        yield c


async def token(world: World) -> str:
    profile = await world.chats.get_profile(PRIVATE)
    assert profile is not None
    return profile.feed_token


async def test_the_feed_lists_what_the_chat_follows_and_reset_revokes_it(world: World, client: TestClient) -> None:
    await world.ask("subscribe regulators-roundtable")
    await world.ask("ical")
    first = await token(world)
    response = await client.get(f"/ical/personal/{first}.ics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/calendar")
    assert response.headers["Cache-Control"].startswith("private")
    cal = icalendar.Calendar.from_ical(await response.read())
    summaries = [str(e["SUMMARY"]) for e in cal.walk("VEVENT")]
    assert summaries and all("Deadline" in s or "oundtable" in s or "egulator" in s for s in summaries)
    assert any(s.startswith("Deadline: ") for s in summaries)
    assert len(cal.walk("VTIMEZONE")) == 1
    etag = response.headers["ETag"]
    cached = await client.get(f"/ical/personal/{first}.ics", headers={"If-None-Match": etag})
    assert cached.status == 304

    await world.ask("ical reset")
    assert (await client.get(f"/ical/personal/{first}.ics")).status == 404
    assert (await client.get(f"/ical/personal/{await token(world)}.ics")).status == 200


async def test_unknown_and_malformed_tokens_are_not_found(client: TestClient) -> None:
    for path in ("/ical/personal/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics", "/ical/personal/short.ics",
                 "/ical/personal/%3Cscript%3E.ics"):
        response = await client.get(path)
        assert response.status == 404, path
