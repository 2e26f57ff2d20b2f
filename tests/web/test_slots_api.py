"""Speaking-slot requests over HTTP, against a real SQLite store holding the WSIS+20 demo meeting:
the secretariat opens a call, delegates file, change and withdraw requests (their identity is a
cookie), the secretariat reviews them in protocol order, and the public and private views show
only what they should."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlAgendaStore, SqlConsoleStore, SqlSlotStore, open_store
from floorbridge.adapters.web.console_auth import SESSION_COOKIE, ConsoleAuth
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.chats import Platform, Role, Staff, UserRef
from floorbridge.core.ids import MeetingId
from tests.support import Clock, publish_wsis

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
PUBLIC = "https://bridge.example.org"
BEFORE = datetime(2025, 4, 20, 8, 0, tzinfo=UTC)
AFTER = datetime(2025, 5, 1, 6, 0, tzinfo=UTC)
SECRETARIAT = UserRef(Platform.TELEGRAM, "7")
MODERATOR = UserRef(Platform.TELEGRAM, "8")
OTHER_SECRETARIAT = UserRef(Platform.TELEGRAM, "9")  # secretariat of another meeting
CALL = {
    "title": "High-level segment: policy statements",
    "deadline": "2025-04-30T23:59:00+02:00",
    "sessions": ["hls-statements-1", "hls-statements-2", "hls-statements-3"],
    "minutes": 3,
    "one_per_delegation": True,
    "modes": ["in_room", "remote"],
    "languages": ["en", "fr", "es", "ru", "ar", "zh"],
}
BASE = "/api/v1/meetings/wsis-2025"


def form(**changes: str) -> dict[str, str]:
    base = {"name": "H.E. Ms. Amina Diallo", "title": "Cabinet Secretary for ICT", "delegation": "Kenya",
            "stakeholder": "government", "rank": "minister", "session": "hls-statements-1", "mode": "remote",
            "language": "fr"}
    base.update(changes)
    return base



@dataclass
class Browser:
    """One person's browser: its own cookies (and, for the secretariat, the CSRF token)."""

    server: TestServer
    session: ClientSession
    csrf: str = ""

    async def call(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> ClientResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.csrf and csrf:
            headers["X-CSRF-Token"] = self.csrf
        return await self.session.request(method, self.server.make_url(path), headers=headers, **kwargs)

    def cookie(self, name: str) -> str:
        found = [c.value for c in self.session.cookie_jar if c.key == name]
        return found[0] if found else ""


@dataclass
class Site:
    store: SqlAgendaStore
    service: SlotService
    console: ConsoleAuth
    clock: Clock
    server: TestServer
    sessions: list[ClientSession] = field(default_factory=list)

    def browser(self) -> Browser:
        session = ClientSession(cookie_jar=CookieJar(unsafe=True))
        self.sessions.append(session)
        return Browser(self.server, session)

    async def staff(self, user: UserRef) -> Browser:
        token, signed_in = await self.console.open_session(str(user))
        b = self.browser()
        b.session.cookie_jar.update_cookies({SESSION_COOKIE: token}, self.server.make_url("/"))
        b.csrf = signed_in.csrf
        return b

    async def open_call(self, **changes: Any) -> None:
        secretariat = await self.staff(SECRETARIAT)
        r = await secretariat.call("PUT", f"{BASE}/slot-calls/hls", json={**CALL, **changes})
        assert r.status in (200, 201), await r.text()


@asynccontextmanager
async def open_site(tmp: Path) -> AsyncIterator[Site]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp}/slots.db")
    await publish_wsis(store, now=datetime(2025, 3, 1, tzinfo=UTC), base_url=PUBLIC)
    clock = Clock(BEFORE)
    service = SlotService(SqlSlotStore(store.engine), store, clock=clock)
    staff = Staff({WSIS: {SECRETARIAT: Role.SECRETARIAT, MODERATOR: Role.MODERATOR},
                   MeetingId("other-meeting"): {OTHER_SECRETARIAT: Role.SECRETARIAT}})
    console = ConsoleAuth(SqlConsoleStore(store.engine), staff, public_url=PUBLIC)
    snapshots = Snapshots(store, poll_seconds=3600)
    await snapshots.start()
    app = create_app(snapshots, WebOptions(PUBLIC), console=console, slots=service)
    server = TestServer(app)
    await server.start_server()
    site = Site(store, service, console, clock, server)
    try:
        yield site
    finally:
        for s in site.sessions:
            await s.close()
        await server.close()
        await snapshots.stop()
        await store.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as s:
        yield s


async def problems(r: ClientResponse) -> dict[str, str]:
    assert r.status == 400, await r.text()
    body = await r.json()
    return {p["where"]: p["what"] for p in body["error"]["problems"]}


async def file(site: Site, browser: Browser, **changes: str) -> dict[str, Any]:
    r = await browser.call("POST", f"{BASE}/slot-calls/hls/requests", json=form(**changes))
    assert r.status == 201, await r.text()
    return dict(await r.json())


# ---------------------------------------------------------------- calls


async def test_the_secretariat_opens_a_call_and_everyone_sees_it(site: Site) -> None:
    secretariat = await site.staff(SECRETARIAT)
    r = await secretariat.call("PUT", f"{BASE}/slot-calls/hls", json=CALL)
    assert r.status == 201, await r.text()
    public = site.browser()
    listed = await (await public.call("GET", f"{BASE}/slot-calls")).json()
    [call] = listed["calls"]
    assert call["deadline"] == "2025-04-30T21:59:00Z" and call["deadline_local"] == "2025-04-30T23:59:00+02:00"
    assert call["open"] is True and call["minutes"] == 3 and call["one_per_delegation"] is True
    assert [s["id"] for s in call["sessions"]] == CALL["sessions"]
    assert call["sessions"][0]["title"] == "High-level segment: policy statements (1)"
    assert call["form_url"] == f"{PUBLIC}/meetings/wsis-2025/slots/hls"
    r = await secretariat.call("PUT", f"{BASE}/slot-calls/hls", json={**CALL, "minutes": 4, "modes": ["in_room"]})
    assert r.status == 200 and (await r.json())["modes"] == ["in_room"]
    site.clock.now = AFTER
    listed = await (await public.call("GET", f"{BASE}/slot-calls")).json()
    assert listed["calls"][0]["open"] is False and listed["calls"][0]["minutes"] == 4


async def test_every_bad_field_of_a_call_is_named(site: Site) -> None:
    secretariat = await site.staff(SECRETARIAT)
    bad = {"title": " ", "deadline": "2025-04-30T23:59", "sessions": ["hls-statements-1", "nope"], "minutes": 0,
           "one_per_delegation": "yes", "modes": ["telepathy"], "languages": ["English"], "colour": "blue"}
    found = await problems(await secretariat.call("PUT", f"{BASE}/slot-calls/Bad_Id", json=bad))
    assert set(found) == {"call", "title", "deadline", "sessions", "minutes", "one_per_delegation", "modes",
                          "languages", "colour"}
    assert "needs a UTC offset" in found["deadline"] and "'nope' is not a session" in found["sessions"]
    found = await problems(await secretariat.call("PUT", f"{BASE}/slot-calls/hls", data="title=x"))
    assert "body" in found  # the call's rules come as JSON
    assert await site.service.store.calls(WSIS) == []


async def test_secretariat_endpoints_refuse_everybody_else(site: Site) -> None:
    await site.open_call()
    delegate = site.browser()
    filed = await file(site, delegate)
    review = f"{BASE}/slot-requests/{filed['ref']}/review"
    writes = [("PUT", f"{BASE}/slot-calls/hls", CALL), ("POST", review, {"decision": "waitlisted"})]
    reads = [("GET", f"{BASE}/slot-calls/hls/requests", None)]
    for method, path, body in writes + reads:
        r = await site.browser().call(method, path, json=body)
        assert r.status == 401, (method, path)
        for user in (MODERATOR, OTHER_SECRETARIAT):
            r = await (await site.staff(user)).call(method, path, json=body)
            assert r.status == 403, (method, path, user)
    secretariat = await site.staff(SECRETARIAT)
    for method, path, body in writes:
        r = await secretariat.call(method, path, json=body, csrf=False)
        assert r.status == 403 and "CSRF" in (await r.json())["error"]["message"], (method, path)
        r = await secretariat.call(method, path, json=body, headers={"X-CSRF-Token": "forged"}, csrf=False)
        assert r.status == 403
    assert (await secretariat.call("GET", f"{BASE}/slot-calls/hls/requests", csrf=False)).status == 200
    assert (await site.service.store.get_request(filed["ref"])).status.value == "pending"  # type: ignore[union-attr]


# ---------------------------------------------------------------- delegates


async def test_a_delegate_files_a_request_and_gets_a_cookie_and_a_private_feed(site: Site) -> None:
    await site.open_call()
    delegate = site.browser()
    r = await delegate.call("POST", f"{BASE}/slot-calls/hls/requests", json=form())
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["status"] == "pending" and body["ref"].startswith("HLS-")
    stored = await site.service.store.get_request(body["ref"])
    assert stored is not None
    assert body["feed_url"] == f"{PUBLIC}/ical/slot/{stored.feed_token}.ics"
    cookie = r.cookies["fb_delegate"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert stored.requester == f"web:{cookie.value}"

    mine = await delegate.call("GET", f"/api/v1/slot-requests/{body['ref']}")
    assert mine.status == 200
    got = await mine.json()
    assert got["form"]["rank"] == "minister" and got["can_change"] is True and got["feed_url"] == body["feed_url"]
    assert (await site.browser().call("GET", f"/api/v1/slot-requests/{body['ref']}")).status == 404
    other = site.browser()
    await file(site, other, delegation="Uganda")
    assert (await other.call("GET", f"/api/v1/slot-requests/{body['ref']}")).status == 404
    assert (await other.call("DELETE", f"/api/v1/slot-requests/{body['ref']}")).status == 404


async def test_a_form_encoded_request_names_every_bad_field(site: Site) -> None:
    await site.open_call(languages=["en", "fr"])
    delegate = site.browser()
    bad = form(name="", rank="emperor", session="hls-opening", language="de", stakeholder="")
    found = await problems(await delegate.call("POST", f"{BASE}/slot-calls/hls/requests", data=bad))
    assert set(found) == {"name", "rank", "session", "language", "stakeholder"}
    assert "head_of_state_or_government" in found["rank"] and "hls-statements-1" in found["session"]
    assert "'de' is not one of the segment's languages (en, fr)" in found["language"]
    r = await delegate.call("POST", f"{BASE}/slot-calls/hls/requests", data=form())
    assert r.status == 201
    assert (await site.browser().call("POST", f"{BASE}/slot-calls/nope/requests", json=form())).status == 404


async def test_one_speaker_per_delegation_and_one_request_each(site: Site) -> None:
    await site.open_call()
    first = site.browser()
    await file(site, first)
    r = await site.browser().call("POST", f"{BASE}/slot-calls/hls/requests", json=form(delegation=" kenya"))
    assert r.status == 422 and (await r.json())["error"]["code"] == "delegation"
    r = await first.call("POST", f"{BASE}/slot-calls/hls/requests", json=form(delegation="Uganda"))
    assert r.status == 422 and (await r.json())["error"]["code"] == "duplicate"


async def test_change_and_withdraw_until_the_deadline_and_not_after(site: Site) -> None:
    await site.open_call()
    delegate = site.browser()
    ref = (await file(site, delegate))["ref"]
    r = await delegate.call("PUT", f"/api/v1/slot-requests/{ref}", json=form(session="hls-statements-3"))
    assert r.status == 200 and (await r.json())["form"]["session"] == "hls-statements-3"
    found = await problems(await delegate.call("PUT", f"/api/v1/slot-requests/{ref}", json=form(mode="carrier-pigeon")))
    assert set(found) == {"mode"}

    site.clock.now = AFTER
    for method in ("PUT", "DELETE"):
        r = await delegate.call(method, f"/api/v1/slot-requests/{ref}", json=form())
        assert r.status == 422, method
        error = (await r.json())["error"]
        assert error["code"] == "deadline"
        assert "passed on 30 April 2025 23:59 CEST (Europe/Zurich)" in error["message"]
    r = await site.browser().call("POST", f"{BASE}/slot-calls/hls/requests", json=form(delegation="Chad"))
    assert r.status == 422 and "30 April 2025 23:59 CEST" in (await r.json())["error"]["message"]
    assert (await (await delegate.call("GET", f"/api/v1/slot-requests/{ref}")).json())["can_change"] is False

    site.clock.now = BEFORE
    r = await delegate.call("DELETE", f"/api/v1/slot-requests/{ref}")
    assert r.status == 200 and (await r.json())["status"] == "withdrawn"
    r = await delegate.call("PUT", f"/api/v1/slot-requests/{ref}", json=form())
    assert r.status == 422 and (await r.json())["error"]["code"] == "closed"


async def test_writes_announced_as_cross_site_are_refused(site: Site) -> None:
    await site.open_call()
    delegate = site.browser()
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "same-site"}):
        r = await delegate.call("POST", f"{BASE}/slot-calls/hls/requests", data=form(), headers=headers)
        assert r.status == 403, headers
    assert delegate.cookie("fb_delegate") == ""  # nothing was planted
    r = await delegate.call("POST", f"{BASE}/slot-calls/hls/requests", data=form(),
                            headers={"Origin": PUBLIC, "Sec-Fetch-Site": "same-origin"})
    assert r.status == 201
    ref = (await r.json())["ref"]
    r = await delegate.call("DELETE", f"/api/v1/slot-requests/{ref}", headers={"Origin": "https://evil.example"})
    assert r.status == 403


# ---------------------------------------------------------------- review and the rolling list


async def test_the_secretariat_sees_every_request_in_protocol_order_and_no_identities(site: Site) -> None:
    await site.open_call()
    ambassador, minister, head = site.browser(), site.browser(), site.browser()
    a = await file(site, ambassador, delegation="Chile", rank="ambassador_or_head_of_delegation")
    site.clock.now += timedelta(minutes=1)
    m = await file(site, minister, delegation="Kenya", rank="minister")
    site.clock.now += timedelta(minutes=1)
    h = await file(site, head, delegation="Estonia", rank="head_of_state_or_government")
    secretariat = await site.staff(SECRETARIAT)
    r = await secretariat.call("GET", f"{BASE}/slot-calls/hls/requests")
    body = await r.json()
    assert body["draft_order"] == [h["ref"], m["ref"], a["ref"]]
    assert body["counts"]["pending"] == 3
    assert {x["channel"] for x in body["requests"]} == {"web"}
    text = await r.text()
    for browser in (ambassador, minister, head):
        assert browser.cookie("fb_delegate") not in text  # the cookie is the delegate's identity
    stored = await site.service.store.requests(WSIS)
    assert all(s.feed_token not in text for s in stored) and "feed_url" not in text and "requester" not in text


async def test_review_then_the_rolling_list(site: Site) -> None:
    await site.open_call()
    m = await file(site, site.browser(), delegation="Kenya", name="Amina <b>Diallo</b>")
    h = await file(site, site.browser(), delegation="Estonia", rank="head_of_state_or_government",
                   name="Alar Karis", title="President", session="hls-statements-1")
    secretariat = await site.staff(SECRETARIAT)
    listed = await (await secretariat.call("GET", f"{BASE}/slot-calls/hls/requests")).json()
    stamps = {x["ref"]: x["updated_at"] for x in listed["requests"]}
    review = f"{BASE}/slot-requests/{{}}/review"
    site.clock.now += timedelta(days=12)  # the secretariat reviews after the deadline

    found = await problems(await secretariat.call("POST", review.format(m["ref"]), json={"decision": "approved"}))
    assert set(found) == {"order", "start"}
    found = await problems(await secretariat.call("POST", review.format(m["ref"]), json={
        "decision": "approved", "order": 2, "start": "2025-07-09T12:29:00+02:00", "minutes": 3}))
    assert "outside High-level segment: policy statements (1) (11:00–12:30, Europe/Zurich)" in found["start"]
    found = await problems(await secretariat.call("POST", review.format(m["ref"]), json={"decision": "rejected"}))
    assert set(found) == {"reason"}
    found = await problems(await secretariat.call("POST", review.format(m["ref"]), json={"decision": "maybe"}))
    assert "approved, waitlisted, rejected" in found["decision"]

    r = await secretariat.call("POST", review.format(h["ref"]), json={
        "decision": "approved", "order": 1, "start": "2025-07-09T11:00:00+02:00", "minutes": 5,
        "expected_updated_at": stamps[h["ref"]]})
    assert r.status == 200, await r.text()
    approved = await r.json()
    assert approved["slot"] == {"session": "hls-statements-1", "order": 1, "start": "2025-07-09T09:00:00Z",
                                "minutes": 5}
    r = await secretariat.call("POST", review.format(h["ref"]), json={
        "decision": "waitlisted", "expected_updated_at": stamps[h["ref"]]})
    assert r.status == 409  # somebody decided since that list was read
    r = await secretariat.call("POST", review.format(m["ref"]), json={
        "decision": "approved", "order": 2, "start": "2025-07-09T11:05:00+02:00"})
    assert r.status == 200 and (await r.json())["slot"]["minutes"] == 3  # the call's minutes by default
    assert (await secretariat.call("POST", review.format("HLS-NOPE00"), json={"decision": "approved"})).status == 404

    r = await site.browser().call("GET", f"{BASE}/sessions/hls-statements-1/rolling-list")
    body = await r.json()
    assert [(s["order"], s["name"], s["delegation"], s["minutes"]) for s in body["speakers"]] == [
        (1, "Alar Karis", "Estonia", 5), (2, "Amina <b>Diallo</b>", "Kenya", 3)]
    assert body["speakers"][0]["start"] == "2025-07-09T09:00:00Z"
    assert body["speakers"][0]["start_local"] == "2025-07-09T11:00:00+02:00"
    assert set(body["speakers"][0]) == {"order", "name", "title", "delegation", "start", "start_local", "minutes"}
    empty = await (await site.browser().call("GET", f"{BASE}/sessions/hls-statements-2/rolling-list")).json()
    assert empty["speakers"] == []
    assert (await site.browser().call("GET", f"{BASE}/sessions/nope/rolling-list")).status == 404


# ---------------------------------------------------------------- the private feed over HTTP


async def test_the_slot_feed_follows_the_request(site: Site) -> None:
    await site.open_call()
    delegate = site.browser()
    filed = await file(site, delegate)
    path = filed["feed_url"].removeprefix(PUBLIC)
    public = site.browser()

    r = await public.call("GET", path)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/calendar")
    assert r.headers["Cache-Control"].startswith("private")
    assert list(icalendar.Calendar.from_ical(await r.read()).walk("VEVENT")) == []  # pending: nothing yet

    secretariat = await site.staff(SECRETARIAT)
    r = await secretariat.call("POST", f"{BASE}/slot-requests/{filed['ref']}/review", json={
        "decision": "approved", "order": 4, "start": "2025-07-09T11:12:00+02:00", "minutes": 3})
    assert r.status == 200
    r = await public.call("GET", path)
    [event] = icalendar.Calendar.from_ical(await r.read()).walk("VEVENT")
    assert str(event["UID"]) == f"slot-{filed['ref']}@floorbridge" and str(event["STATUS"]) == "CONFIRMED"
    start = event.decoded("DTSTART")
    assert (start.hour, start.minute, start.utcoffset()) == (11, 12, timedelta(hours=2))
    etag = r.headers["ETag"]
    assert (await public.call("GET", path, headers={"If-None-Match": etag})).status == 304
    approved_sequence = int(event["SEQUENCE"])

    site.clock.now += timedelta(hours=1)
    assert (await delegate.call("DELETE", f"/api/v1/slot-requests/{filed['ref']}")).status == 200
    r = await public.call("GET", path)
    [event] = icalendar.Calendar.from_ical(await r.read()).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) > approved_sequence

    assert (await public.call("GET", "/ical/slot/" + "A" * 43 + ".ics")).status == 404
    assert (await public.call("GET", "/ical/slot/short.ics")).status == 404
