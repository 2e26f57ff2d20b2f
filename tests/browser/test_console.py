"""The moderator console and the public live page in a real headless Chromium, against a real
floorbridge web app over a real SQLite store holding the published WSIS+20 demo meeting: sign in
through the form, watch remote requests arrive without reloading, give the floor, see the timer
run, reorder by keyboard and by drag and drop, and follow it all on the public page, where a remote
delegate also asks for the floor and withdraws."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web
from playwright.async_api import Browser, Page, Response, Route, expect

from floorbridge.adapters.floor_service import FloorService
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlConsoleStore, SqlSlotStore, SqlSpeakerStore, open_store
from floorbridge.adapters.web.console_auth import ConsoleAuth
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.chats import Platform, Role, Staff, UserRef
from floorbridge.core.ids import MeetingId
from floorbridge.core.slots import SlotStatus
from tests.support import publish_wsis

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
SESSION = "hls-statements-1"
CONSOLE_PAGE = f"/console/{WSIS}/{SESSION}"
LIVE_PAGE = f"/meetings/{WSIS}/sessions/{SESSION}/live"
API = f"/api/v1/meetings/{WSIS}/sessions/{SESSION}/speakers"
PASSWORD = "correct horse battery staple"
CHAIR_IN_CHAT = UserRef(Platform.TELEGRAM, "42")
SLOT_CLOCK = datetime(2025, 4, 20, 8, 0, tzinfo=UTC)  # before the deadline of the call below
SLOT_CALL = {
    "title": "High-level segment: policy statements",
    "deadline": "2025-04-30T23:59:00+02:00",
    "sessions": [SESSION],
    "minutes": 3,
    "one_per_delegation": True,
    "modes": ["in_room", "remote"],
    "languages": ["en", "fr"],
}


@dataclass
class Floorbridge:
    """A running floorbridge web app and ways to act on it from outside the browser."""

    base: str
    floor: FloorService
    console: ConsoleAuth
    slots: SlotService | None = None
    clients: list[ClientSession] = field(default_factory=list)

    def client(self) -> ClientSession:
        client = ClientSession()
        self.clients.append(client)
        return client

    async def ask(self, name: str, delegation: str, speech_type: str = "contribution") -> dict[str, Any]:
        """A remote delegate asks for the floor from their own browser (own cookie), not the page's."""
        async with self.client().post(f"{self.base}{API}/requests",
                               json={"name": name, "delegation": delegation, "speech_type": speech_type}) as r:
            assert r.status == 201, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def waiting(self) -> list[str]:
        lst = await self.floor.view(WSIS, SESSION)  # type: ignore[arg-type]
        return [s.participant.name for s in lst.waiting()]


@asynccontextmanager
async def running(tmp_path: Path, serve_app: Callable[[web.Application], Awaitable[str]], *,
                  with_slots: bool = False) -> AsyncIterator[Floorbridge]:
    """The web app as `run.py serve` builds it (without chat), with or without the speaking-slot service."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/browser.db")
    await publish_wsis(store, now=datetime(2025, 7, 1, tzinfo=UTC))
    floor = FloorService(SqlSpeakerStore(store.engine), store, tick_seconds=0.2)
    await floor.start()
    staff = Staff({WSIS: {CHAIR_IN_CHAT: Role.MODERATOR}})
    console = ConsoleAuth(SqlConsoleStore(store.engine), staff, public_url="http://127.0.0.1")
    await console.add_account("chair", PASSWORD, {WSIS: Role.MODERATOR}, "Chair of the plenary")
    await console.add_account("clerk", PASSWORD, {WSIS: Role.SECRETARIAT}, "Conference services")
    snapshots = Snapshots(store, poll_seconds=3600)
    await snapshots.start()
    slots = SlotService(SqlSlotStore(store.engine), store, clock=lambda: SLOT_CLOCK) if with_slots else None
    app = create_app(snapshots, WebOptions("http://127.0.0.1"), floor_desk=floor, speaker_store=floor.store,
                     console=console, slots=slots)
    site = Floorbridge(await serve_app(app), floor, console, slots)
    try:
        yield site
    finally:
        for client in site.clients:
            await client.close()
        await floor.stop()
        await snapshots.stop()
        await store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, serve_app: Callable[[web.Application], Awaitable[str]]) -> AsyncIterator[Floorbridge]:
    async with running(tmp_path, serve_app) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="session")
async def slot_site(tmp_path: Path,
                    serve_app: Callable[[web.Application], Awaitable[str]]) -> AsyncIterator[Floorbridge]:
    async with running(tmp_path, serve_app, with_slots=True) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="session")
async def public_page(browser: Browser, serve_app: Callable[[web.Application], Awaitable[str]]) -> AsyncIterator[Page]:
    """A second, anonymous browser (own cookies) for the public page; closed before the servers stop."""
    context = await browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()


# Answers a page may get without anything being wrong: the browser's own favicon request, and the
# speaking-slot calls, which this app (without the slots service) does not serve.
TOLERATED_404 = re.compile(r"/favicon\.ico$|/slot-calls$")


def no_script_errors(page: Page) -> list[str]:
    """Collects script errors and failed requests of `page` (the test asserts the list stays empty)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)

    def on_response(response: Response) -> None:
        if response.status >= 400 and not (response.status == 404 and TOLERATED_404.search(response.url)):
            errors.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", on_response)
    return errors


async def sign_in(page: Page, base: str, username: str = "chair") -> None:
    await page.goto(base + CONSOLE_PAGE)
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(base + CONSOLE_PAGE)
    await expect(page.locator("#status")).to_contain_text("Live")


def seconds(shown: str) -> int:
    found = re.fullmatch(r"(-?)(\d+):(\d\d)", shown.strip())
    assert found, shown
    value = int(found.group(2)) * 60 + int(found.group(3))
    return -value if found.group(1) else value


async def see_the_timer_run(timer: Any) -> None:
    await expect(timer).to_have_text(re.compile(r"^-?\d+:\d\d$"))
    first = await timer.text_content()
    await expect(timer).not_to_have_text(first)  # it ticks by itself, no update from the server needed
    assert seconds(await timer.text_content()) < seconds(first)


async def test_the_moderator_sees_requests_arrive_gives_the_floor_and_reorders_by_keyboard(
    site: Floorbridge, page: Page
) -> None:
    errors = no_script_errors(page)
    await sign_in(page, site.base)
    rows = page.locator("#waiting tr")
    await expect(page.locator("#waiting-empty")).to_be_visible()
    await expect(page.locator("#current")).to_have_text("Nobody has the floor.")
    await expect(page.locator("#slots")).to_be_hidden()  # this server has no speaking-slot service (404)

    await site.ask("Delegate of Ghana", "Ghana")
    await site.ask("Delegate of Brazil", "Brazil")
    await expect(rows).to_have_count(2)  # pushed by the server, no reload
    await expect(rows.nth(0)).to_contain_text("Delegate of Ghana")
    await expect(rows.nth(0)).to_contain_text("remote")
    await expect(rows.nth(1)).to_contain_text("Delegate of Brazil")
    await expect(page.locator("#waiting-empty")).to_be_hidden()

    await page.get_by_role("button", name="Next speaker").click()
    await expect(page.locator("#current-name")).to_have_text("Delegate of Ghana")
    await expect(rows).to_have_count(1)
    await see_the_timer_run(page.locator("#timer"))

    await site.ask("Delegate of Chile", "Chile")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("Delegate of Chile")
    await rows.nth(1).focus()
    await page.keyboard.press("Alt+ArrowUp")
    await expect(rows.nth(0)).to_contain_text("Delegate of Chile")
    await expect(rows.nth(0)).to_be_focused()  # the moved speaker keeps the focus
    assert await site.waiting() == ["Delegate of Chile", "Delegate of Brazil"]
    await page.keyboard.press("Alt+ArrowDown")
    await expect(rows.nth(1)).to_contain_text("Delegate of Chile")
    await expect(rows.nth(1)).to_be_focused()
    assert await site.waiting() == ["Delegate of Brazil", "Delegate of Chile"]

    # N gives the floor to the next speaker when the focus is not in a text field ...
    await page.keyboard.press("n")
    await expect(page.locator("#current-name")).to_have_text("Delegate of Brazil")
    # ... and types an N when it is.
    await page.get_by_label("Name", exact=True).fill("")
    await page.get_by_label("Name", exact=True).press("N")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("N")
    await expect(page.locator("#current-name")).to_have_text("Delegate of Brazil")
    assert errors == []


async def test_pause_set_time_add_in_room_speaker_and_drag_and_drop(site: Floorbridge, page: Page) -> None:
    errors = no_script_errors(page)
    await sign_in(page, site.base)
    rows = page.locator("#waiting tr")
    await site.ask("Delegate of India", "India")
    await expect(rows).to_have_count(1)

    await page.get_by_label("Name", exact=True).fill("Delegate of Switzerland")
    await page.get_by_label("Delegation", exact=True).fill("Switzerland")
    await page.get_by_role("button", name="Add in-room speaker").click()
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("Delegate of Switzerland")
    await expect(rows.nth(1)).to_contain_text("in room")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("")  # the form is ready for the next one

    await rows.nth(1).drag_to(rows.nth(0))
    await expect(rows.nth(0)).to_contain_text("Delegate of Switzerland")
    assert await site.waiting() == ["Delegate of Switzerland", "Delegate of India"]

    await page.get_by_role("button", name="Next speaker").click()
    await expect(page.locator("#current-name")).to_have_text("Delegate of Switzerland")
    timer = page.locator("#timer")
    await expect(timer.locator("..")).not_to_have_class(re.compile(r"\bwarn\b"))
    await page.get_by_label("Seconds per speaker").fill("20")
    await page.get_by_role("button", name="Set time").click()
    await expect(timer.locator("..")).to_have_class(re.compile(r"\bwarn\b"))  # red under 30 s
    await see_the_timer_run(timer)

    await page.get_by_role("button", name="Pause").click()
    await expect(page.locator("#timer-note")).to_have_text("paused")
    await expect(page.get_by_role("button", name="Resume")).to_be_visible()
    held = await timer.text_content()
    await page.wait_for_timeout(1200)  # a paused timer must not move: look again a second later
    await expect(timer).to_have_text(held or "")
    await page.get_by_role("button", name="Resume").click()
    await expect(page.locator("#timer-note")).to_have_text("")
    await see_the_timer_run(timer)

    await page.get_by_role("button", name="Close list").click()
    await expect(page.locator("#list-state")).to_contain_text("closed")
    await page.get_by_role("button", name="Remove Delegate of India").click()
    await expect(page.locator("#waiting-empty")).to_be_visible()
    assert errors == []


async def test_a_stale_action_shows_the_list_as_it_is_now(site: Floorbridge, page: Page) -> None:
    await sign_in(page, site.base)
    rows = page.locator("#waiting tr")
    await site.ask("Delegate of Japan", "Japan")
    await site.ask("Delegate of Egypt", "Egypt")
    await expect(rows).to_have_count(2)

    async def decided_on_an_old_version(route: Route) -> None:
        body = route.request.post_data_json
        body["expected_version"] = 0  # as if another moderator had changed the list meanwhile
        await route.continue_(post_data=json.dumps(body))

    await page.route("**/speakers/actions", decided_on_an_old_version)
    await page.get_by_role("button", name="Remove Delegate of Japan").click()
    await expect(page.locator("#notice")).to_contain_text("the list changed; here it is now", ignore_case=True)
    await expect(rows).to_have_count(2)
    await page.unroute("**/speakers/actions")
    await page.get_by_role("button", name="Remove Delegate of Japan").click()
    await expect(rows).to_have_count(1)
    await expect(page.locator("#notice")).to_be_hidden()


async def test_the_public_page_follows_live_and_a_remote_delegate_asks_and_withdraws(
    site: Floorbridge, page: Page, public_page: Page
) -> None:
    errors = no_script_errors(public_page)
    await sign_in(page, site.base)
    await public_page.goto(site.base + LIVE_PAGE)
    await expect(public_page.locator("#status")).to_contain_text("Live")
    await expect(public_page.locator("#current")).to_have_text("Nobody has the floor.")
    listed = public_page.locator("#waiting li")

    await site.ask("Delegate of Ghana", "Ghana")
    await expect(listed).to_have_count(1)

    await public_page.get_by_label("Your name").fill("Delegate of Kenya")
    await public_page.get_by_label("Delegation").fill("Kenya")
    await public_page.get_by_label("Speech").select_option("contribution")
    await public_page.get_by_role("button", name="Ask for the floor").click()
    mine = public_page.locator("#mine-text")
    await expect(mine).to_have_text("You are number 2 in the list of speakers.")
    await expect(listed).to_have_count(2)
    await expect(page.locator("#waiting tr").nth(1)).to_contain_text("Delegate of Kenya")

    await page.get_by_role("button", name="Next speaker").click()
    await expect(public_page.locator("#current-name")).to_have_text("Delegate of Ghana")
    await expect(mine).to_have_text("You are number 1 in the list of speakers.")
    await see_the_timer_run(public_page.locator("#timer"))

    await page.get_by_role("button", name="Next speaker").click()
    await expect(public_page.locator("#current-name")).to_have_text("Delegate of Kenya")
    await expect(mine).to_have_text("You have the floor.")
    await expect(public_page.locator("#current")).to_contain_text("remote")

    await page.get_by_role("button", name="End speech").click()
    await expect(public_page.locator("#current")).to_have_text("Nobody has the floor.")
    await expect(mine).to_have_text("Your speech has ended.")

    await public_page.get_by_role("button", name="Ask for the floor").click()  # the form kept the name
    await expect(mine).to_have_text("You are number 1 in the list of speakers.")
    await public_page.get_by_role("button", name="Withdraw my request").click()
    await expect(mine).to_have_text("You withdrew your request.")
    await expect(listed).to_have_count(0)
    await expect(page.locator("#waiting-empty")).to_be_visible()
    assert errors == []


async def test_a_phone_reads_the_public_page_without_scrolling_sideways(site: Floorbridge, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        phone = await context.new_page()
        await site.ask("Delegate of the Plurinational State of Bolivia", "Bolivia (Plurinational State of)")
        await phone.goto(site.base + LIVE_PAGE)
        await expect(phone.locator("#waiting li")).to_have_count(1)
        await expect(phone.locator("#waiting li")).to_contain_text("Plurinational State of Bolivia")
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways on a phone ({width} px wide)"
    finally:
        await context.close()


async def open_slot_call_with_requests(site: Floorbridge, *requests: tuple[str, str, str]) -> dict[str, str]:
    """The secretariat opens the call (through the API); delegates file (name, delegation, rank) requests
    from their own browsers. Returns each name's request reference."""
    token, signed_in = await site.console.open_session("account:clerk")
    staff = {"Cookie": f"fb_console={token}", "X-CSRF-Token": signed_in.csrf}
    async with site.client().put(f"{site.base}/api/v1/meetings/{WSIS}/slot-calls/hls", json=SLOT_CALL,
                                 headers=staff) as r:
        assert r.status in (200, 201), await r.text()
    refs: dict[str, str] = {}
    for name, delegation, rank in requests:
        form = {"name": name, "title": "Head of delegation", "delegation": delegation, "stakeholder": "government",
                "rank": rank, "session": SESSION, "mode": "remote", "language": "fr"}
        async with site.client().post(f"{site.base}/api/v1/meetings/{WSIS}/slot-calls/hls/requests",
                                      json=form) as r:
            assert r.status == 201, await r.text()
            refs[name] = (await r.json())["ref"]
    return refs


async def test_the_secretariat_sees_the_pending_speaking_slot_requests(slot_site: Floorbridge, page: Page) -> None:
    await open_slot_call_with_requests(slot_site, ("Ms. Amina Diallo", "Kenya", "minister"),
                                       ("H.E. Mr. Rui Costa", "Portugal", "head_of_state_or_government"))
    errors = no_script_errors(page)
    await sign_in(page, slot_site.base, "clerk")
    section = page.locator("#slots")
    await expect(section).to_be_visible()
    await expect(section).to_contain_text("High-level segment: policy statements")
    await expect(section).to_contain_text("2 pending")
    rows = section.locator("table.slot-requests tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("H.E. Mr. Rui Costa")  # protocol order: head of state first
    await expect(rows.nth(1)).to_contain_text("Ms. Amina Diallo")
    assert errors == []


async def test_the_secretariat_approves_waitlists_and_rejects_speaking_slot_requests(
    slot_site: Floorbridge, page: Page
) -> None:
    minister, head = "Ms. Amina <b>Diallo</b>", "H.E. Mr. Rui Costa"  # markup in a name stays text
    refs = await open_slot_call_with_requests(slot_site, (minister, "Kenya", "minister"),
                                              (head, "Portugal", "head_of_state_or_government"))
    errors = no_script_errors(page)
    await sign_in(page, slot_site.base, "clerk")
    section = page.locator("#slots")
    await expect(section).to_contain_text("2 pending")
    first, second = (section.locator(f'table.slot-requests tr[data-ref="{refs[n]}"]') for n in (head, minister))
    await expect(second.locator("td").nth(1)).to_have_text(minister)
    await expect(section.locator("b")).to_have_count(0)
    form = section.locator("form.review-form")

    # Approve the head of state: the preferred session, the first place and the session's start are proposed.
    await section.get_by_role("button", name=f"Approve {head}", exact=True).click()
    await expect(form.get_by_label("Session")).to_be_focused()
    await expect(form.get_by_label("Session")).to_have_value(SESSION)
    await expect(form.get_by_label("Order")).to_have_value("1")
    await expect(form.get_by_label("Start (Europe/Zurich)")).to_have_value("2025-07-09T11:00")
    await expect(form.get_by_label("Minutes")).to_have_value("3")
    await form.get_by_role("button", name="Confirm approval").click()
    await expect(first.locator(".slot-status")).to_have_text(
        "approved: High-level segment: policy statements (1), no. 1 at 11:00 (3 min)")
    await expect(section.get_by_role("status")).to_have_text(f"{refs[head]} ({head}) is now approved.")
    await expect(first.get_by_role("button")).to_have_count(0)  # decided: no more review buttons

    # Waitlist the minister; a waitlisted request can still be approved or rejected.
    await section.get_by_role("button", name=f"Waitlist {minister}", exact=True).click()
    await expect(second.locator(".slot-status")).to_have_text("waitlisted")
    await expect(second.get_by_role("button")).to_have_count(2)

    # An approval the API refuses (outside the session) shows why next to the row, and changes nothing.
    await section.get_by_role("button", name=f"Approve {minister}", exact=True).click()
    await expect(form.get_by_label("Order")).to_have_value("2")  # after the approved speaker ...
    await expect(form.get_by_label("Start (Europe/Zurich)")).to_have_value("2025-07-09T11:03")  # ... and his 3 min
    await form.get_by_label("Start (Europe/Zurich)").fill("2025-07-09T12:29")
    await form.get_by_role("button", name="Confirm approval").click()
    await expect(second.get_by_role("alert")).to_contain_text(
        "outside High-level segment: policy statements (1) (11:00–12:30, Europe/Zurich)")
    await expect(second.locator(".slot-status")).to_have_text("waitlisted")
    await form.get_by_role("button", name="Cancel").click()
    await expect(form).to_have_count(0)
    await expect(section.get_by_role("button", name=f"Approve {minister}", exact=True)).to_be_focused()

    # A rejection needs a reason.
    await section.get_by_role("button", name=f"Reject {minister}", exact=True).click()
    reason = form.get_by_label("Reason (the delegate is told)")
    await expect(reason).to_be_focused()
    await form.get_by_role("button", name="Confirm rejection").click()
    assert await reason.evaluate("field => field.validity.valueMissing")
    await expect(second.locator(".slot-status")).to_have_text("waitlisted")
    await reason.fill("Statement to be <i>submitted</i> in writing")
    await form.get_by_role("button", name="Confirm rejection").click()
    await expect(second.locator(".slot-status")).to_have_text("rejected: Statement to be <i>submitted</i> in writing")
    await expect(section).to_contain_text("Requests: 1 approved, 1 rejected.")
    await expect(section.locator("b, i")).to_have_count(0)
    await expect(section.locator("table.slot-requests tbody tr")).to_have_count(2)

    assert slot_site.slots is not None
    approved = await slot_site.slots.store.get_request(refs[head])
    rejected = await slot_site.slots.store.get_request(refs[minister])
    assert approved is not None and rejected is not None
    assert approved.status is SlotStatus.APPROVED and approved.approved_session == SESSION
    assert (approved.order, approved.slot_start, approved.slot_minutes) == (
        1, datetime(2025, 7, 9, 9, 0, tzinfo=UTC), 3)
    assert rejected.status is SlotStatus.REJECTED
    assert rejected.reason == "Statement to be <i>submitted</i> in writing"
    refused = [e for e in errors if e.startswith("400 POST ") and e.endswith(f"/slot-requests/{refs[minister]}/review")]
    assert len(refused) == 1 and errors == refused  # only the refused approval, which the page showed


async def test_a_one_time_link_clicked_in_a_web_chat_signs_in_once(
    site: Floorbridge, page: Page, serve_app: Callable[[web.Application], Awaitable[str]]
) -> None:
    """The link is clicked on another site (a web chat; localhost and 127.0.0.1 are different sites),
    so the browser keeps the SameSite=Strict cookie out of any redirect that follows: the console
    must still open signed in. The same link then no longer works."""
    link = await site.console.login_link(CHAIR_IN_CHAT)
    url = site.base + link.removeprefix("http://127.0.0.1")

    async def chat(request: web.Request) -> web.Response:
        return web.Response(text=f'<!doctype html><title>chat</title><a id="link" href="{url}">console</a>',
                            content_type="text/html")

    chat_app = web.Application()
    chat_app.router.add_get("/", chat)
    chat_base = (await serve_app(chat_app)).replace("127.0.0.1", "localhost")
    await page.goto(chat_base + "/")
    await page.click("#link")
    await expect(page).to_have_url(site.base + "/console")
    await expect(page.get_by_role("heading", name="Your meetings")).to_be_visible()
    await expect(page.locator("header")).to_contain_text("telegram:42")
    await page.get_by_role("link", name="WSIS+20 High-Level Event 2025").click()
    await page.get_by_role("link", name="High-level segment: policy statements (1)").click()
    await expect(page.locator("#status")).to_contain_text("Live")

    await page.goto(url)
    await expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Ask the bot for a new one")
