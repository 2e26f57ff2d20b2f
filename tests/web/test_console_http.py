"""The moderator console over HTTP, against a real SQLite store holding the published WSIS+20 demo
meeting: signing in with an argon2 account or a one-time chat link, sessions that expire, CSRF on
every state change, who may see which meeting, the static files, the public live page, and the
`add-account` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from floorbridge.adapters.floor_service import FloorService
from floorbridge.adapters.storage import SqlAgendaStore, SqlConsoleStore, SqlSpeakerStore, open_store
from floorbridge.adapters.web.console import LOGIN_COOKIE
from floorbridge.adapters.web.console_auth import SESSION_COOKIE, ConsoleAuth, hash_password
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.chats import Platform, Role, Staff, UserRef
from floorbridge.core.console import ConsoleAccount
from floorbridge.core.ids import MeetingId
from tests.support import Clock, publish_wsis

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
OTHER = MeetingId("other-meeting")
PUBLIC = "https://bridge.example.org"
NOW = datetime(2025, 7, 9, 8, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose
SESSION = "hls-statements-1"
CONSOLE_PAGE = f"/console/{WSIS}/{SESSION}"
ACTIONS = f"/api/v1/meetings/{WSIS}/sessions/{SESSION}/speakers/actions"
CHAIR_IN_CHAT = UserRef(Platform.TELEGRAM, "42")



@dataclass
class Browser:
    """One person's browser: its own cookie jar; redirects are not followed, to look at them."""

    server: TestServer
    session: ClientSession

    async def get(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.session.get(self.server.make_url(path), allow_redirects=False, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.session.post(self.server.make_url(path), allow_redirects=False, **kwargs)

    def cookie(self, name: str) -> str:
        found = [c.value for c in self.session.cookie_jar if c.key == name]
        return found[0] if found else ""


@dataclass
class Site:
    store: SqlAgendaStore
    console: ConsoleAuth
    clock: Clock
    server: TestServer
    sessions: list[ClientSession] = field(default_factory=list)

    def browser(self) -> Browser:
        session = ClientSession(cookie_jar=CookieJar(unsafe=True))
        self.sessions.append(session)
        return Browser(self.server, session)

    async def account(self, username: str, roles: dict[MeetingId, Role], display_name: str = "") -> None:
        await self.console.store.save_account(ConsoleAccount(username, PASSWORD_HASH, display_name or username, roles))


@asynccontextmanager
async def open_site(tmp: Path) -> AsyncIterator[Site]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp}/console.db")
    await publish_wsis(store, now=NOW, base_url=PUBLIC)
    clock = Clock(NOW)
    staff = Staff({WSIS: {CHAIR_IN_CHAT: Role.MODERATOR}})
    console = ConsoleAuth(SqlConsoleStore(store.engine), staff, public_url=PUBLIC, session_minutes=60,
                          link_minutes=10, clock=clock)
    floor = FloorService(SqlSpeakerStore(store.engine), store, clock=clock)
    snapshots = Snapshots(store, poll_seconds=3600)
    await snapshots.start()
    app = create_app(snapshots, WebOptions(PUBLIC), floor_desk=floor, speaker_store=floor.store, console=console)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site = Site(store, console, clock, server)
    await site.account("chair", {WSIS: Role.MODERATOR}, "Chair of the plenary")
    await site.account("clerk", {WSIS: Role.SECRETARIAT})
    await site.account("visitor", {})
    await site.account("elsewhere", {OTHER: Role.MODERATOR})
    try:
        yield site
    finally:
        for s in site.sessions:
            await s.close()
        await server.close()
        await floor.stop()
        await snapshots.stop()
        await store.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as s:
        yield s


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def page_csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, html
    return found.group(1)


def set_cookies(r: ClientResponse, name: str) -> list[str]:
    return [h for h in r.headers.getall("Set-Cookie", []) if h.startswith(f"{name}=")]


async def login(b: Browser, username: str, password: str = PASSWORD, next_path: str = "") -> ClientResponse:
    form = await b.get("/console/login")
    assert form.status == 200
    token = form_token(await form.text())
    return await b.post("/console/login", data={"csrf": token, "username": username, "password": password,
                                                "next": next_path})


async def signed_in(site: Site, username: str = "chair") -> tuple[Browser, str]:
    """A browser signed in as `username`, and the CSRF token of its console session."""
    b = site.browser()
    r = await login(b, username)
    assert r.status == 303, await r.text()
    page = await b.get(CONSOLE_PAGE)
    if page.status == 200:
        return b, page_csrf(await page.text())
    home = await b.get("/console")
    return b, form_token(await home.text())


async def act(b: Browser, csrf: str | None, **body: Any) -> ClientResponse:
    headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
    return await b.post(ACTIONS, json=body, headers=headers)


# ---------------------------------------------------------------- signing in


async def test_the_login_form_carries_a_strict_cookie_token_and_the_same_hidden_field(site: Site) -> None:
    b = site.browser()
    r = await b.get("/console/login")
    assert r.status == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    [cookie] = set_cookies(r, LOGIN_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/login" in cookie
    assert form_token(await r.text()) == b.cookie(LOGIN_COOKIE)


async def test_signing_in_with_an_argon2_account_opens_the_console(site: Site) -> None:
    b = site.browser()
    r = await login(b, "chair")
    assert r.status == 303 and r.headers["Location"] == "/console"
    [cookie] = set_cookies(r, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    home = await b.get("/console")
    assert home.status == 200
    html = await home.text()
    assert "Chair of the plenary" in html
    assert f'href="/console/{WSIS}"' in html and "WSIS" in html
    meeting = await b.get(f"/console/{WSIS}")
    assert meeting.status == 200
    assert f'href="{CONSOLE_PAGE}"' in await meeting.text()


async def test_a_wrong_password_and_an_unknown_user_get_the_same_401(site: Site) -> None:
    answers = []
    for username, password in (("chair", "not the password at all"), ("nobody-here", PASSWORD)):
        b = site.browser()
        r = await login(b, username, password)
        assert r.status == 401
        html = await r.text()
        assert "wrong username or password" in html
        assert not b.cookie(SESSION_COOKIE)
        answers.append(html.replace(username, "USER"))
    # Apart from the echoed username and the fresh form token, the two answers are the same.
    assert re.sub(r'value="[^"]{40,}"', "", answers[0]) == re.sub(r'value="[^"]{40,}"', "", answers[1])


async def test_a_login_post_without_the_form_token_is_refused(site: Site) -> None:
    b = site.browser()
    await b.get("/console/login")
    r = await b.post("/console/login", data={"username": "chair", "password": PASSWORD})
    assert r.status == 403
    assert not b.cookie(SESSION_COOKIE)
    # A token from another browser's form does not match this browser's cookie either.
    other = site.browser()
    token = form_token(await (await other.get("/console/login")).text())
    r = await b.post("/console/login", data={"csrf": token, "username": "chair", "password": PASSWORD})
    assert r.status == 403 and not b.cookie(SESSION_COOKIE)


async def test_console_pages_send_strangers_to_the_login_form_and_back(site: Site) -> None:
    b = site.browser()
    r = await b.get(CONSOLE_PAGE)
    assert r.status == 303
    assert r.headers["Location"] == f"/console/login?next={CONSOLE_PAGE}"
    form = await b.get(r.headers["Location"])
    assert f'name="next" value="{CONSOLE_PAGE}"' in await form.text()
    signed = await login(b, "chair", next_path=CONSOLE_PAGE)
    assert signed.headers["Location"] == CONSOLE_PAGE
    for path in ("/console", f"/console/{WSIS}"):
        assert (await site.browser().get(path)).headers["Location"].startswith("/console/login")


async def test_signing_in_never_sends_the_browser_off_the_console(site: Site) -> None:
    for evil in ("//evil.example/console", "https://evil.example/", "/console/../admin", "/console\\@evil"):
        r = await login(site.browser(), "chair", next_path=evil)
        assert r.status == 303 and r.headers["Location"] == "/console", evil


async def test_a_session_expires(site: Site) -> None:
    b, csrf = await signed_in(site)
    assert (await b.get(CONSOLE_PAGE)).status == 200
    site.clock.advance(minutes=59)
    assert (await b.get(CONSOLE_PAGE)).status == 200
    site.clock.advance(minutes=2)
    r = await b.get(CONSOLE_PAGE)
    assert r.status == 303 and r.headers["Location"].startswith("/console/login")
    refused = await act(b, csrf, action="close")
    assert refused.status == 401
    assert (await refused.json())["error"]["message"] == "sign in to the console first"


# ---------------------------------------------------------------- CSRF


async def test_actions_need_the_csrf_token(site: Site) -> None:
    b, csrf = await signed_in(site)
    for token in (None, "", "not-the-token"):
        r = await act(b, token, action="close")
        assert r.status == 403, token
        assert "CSRF" in (await r.json())["error"]["message"]
    r = await act(b, csrf, action="close", expected_version=0)
    assert r.status == 200, await r.text()
    assert (await r.json())["list"]["closed"] is True


async def test_logout_needs_the_csrf_token_and_ends_the_session(site: Site) -> None:
    b, csrf = await signed_in(site)
    for data in ({}, {"csrf": "wrong"}):
        r = await b.post("/console/logout", data=data)
        assert r.status == 403
        assert (await b.get(CONSOLE_PAGE)).status == 200  # still signed in
    token = b.cookie(SESSION_COOKIE)
    r = await b.post("/console/logout", data={"csrf": csrf})
    assert r.status == 303 and r.headers["Location"] == "/console/login"
    assert (await b.get(CONSOLE_PAGE)).status == 303
    # The session is gone on the server, not only from this browser.
    replay = site.browser()
    replay.session.cookie_jar.update_cookies({SESSION_COOKIE: token}, site.server.make_url("/"))
    assert (await replay.get(CONSOLE_PAGE)).status == 303


# ---------------------------------------------------------------- who may see what


async def test_a_person_without_a_role_in_the_meeting_gets_403(site: Site) -> None:
    b, csrf = await signed_in(site, "visitor")
    for path in (f"/console/{WSIS}", CONSOLE_PAGE):
        r = await b.get(path)
        assert r.status == 403, path
        assert "not a moderator" in await r.text()
    assert (await act(b, csrf, action="close")).status == 403
    home = await b.get("/console")
    assert home.status == 200 and "no meeting to moderate" in await home.text()


async def test_moderators_of_another_meeting_are_refused(site: Site) -> None:
    b, csrf = await signed_in(site, "elsewhere")
    assert (await b.get(CONSOLE_PAGE)).status == 403
    r = await act(b, csrf, action="next")
    assert r.status == 403 and "wsis-2025" in (await r.json())["error"]["message"]
    home = await (await b.get("/console")).text()
    assert f'href="/console/{OTHER}"' in home and f"/console/{WSIS}" not in home


async def test_the_secretariat_may_use_the_console_too(site: Site) -> None:
    b, csrf = await signed_in(site, "clerk")
    page = await b.get(CONSOLE_PAGE)
    assert page.status == 200 and 'data-role="secretariat"' in await page.text()
    assert (await act(b, csrf, action="set_time", seconds=120)).status == 200


# ---------------------------------------------------------------- one-time links from chat


async def test_a_one_time_link_works_once(site: Site) -> None:
    url = await site.console.login_link(CHAIR_IN_CHAT)
    assert url.startswith(f"{PUBLIC}/console/login/")
    path = url.removeprefix(PUBLIC)
    b = site.browser()
    r = await b.get(path)
    assert r.status == 303 and r.headers["Location"] == "/console"
    [cookie] = set_cookies(r, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert r.headers["Referrer-Policy"] == "no-referrer"
    page = await b.get(CONSOLE_PAGE)
    assert page.status == 200 and "telegram:42" in await page.text()
    again = await site.browser().get(path)
    assert again.status == 403
    html = await again.text()
    assert "used or has expired" in html and "Ask the bot for a new one" in html


async def test_an_expired_link_is_refused(site: Site) -> None:
    path = (await site.console.login_link(CHAIR_IN_CHAT)).removeprefix(PUBLIC)
    site.clock.advance(minutes=11)
    r = await site.browser().get(path)
    assert r.status == 403 and "Ask the bot for a new one" in await r.text()
    assert (await site.browser().get("/console/login/short")).status == 403


async def test_a_chat_preview_does_not_spend_the_link(site: Site) -> None:
    path = (await site.console.login_link(CHAIR_IN_CHAT)).removeprefix(PUBLIC)
    preview = await site.browser().get(path, headers={"User-Agent": "TelegramBot (like TwitterBot)"})
    assert preview.status == 200 and not set_cookies(preview, SESSION_COOKIE)
    assert (await site.browser().get(path)).status == 303  # the person still gets in


async def test_after_a_cross_site_click_the_browser_moves_on_by_itself(site: Site) -> None:
    """A SameSite=Strict cookie stays behind on a redirect that follows a click from another
    site; a page that refreshes to /console makes the next request same-site."""
    path = (await site.console.login_link(CHAIR_IN_CHAT)).removeprefix(PUBLIC)
    b = site.browser()
    r = await b.get(path, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 200 and set_cookies(r, SESSION_COOKIE)
    assert '<meta http-equiv="refresh" content="0;url=/console">' in await r.text()
    page = await b.get(CONSOLE_PAGE, headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status == 200


async def test_a_console_link_from_another_site_is_retried_same_site(site: Site) -> None:
    """A browser leaves the Strict cookie out of a navigation from another site: instead of the
    login form, the page reloads itself same-site, which carries the cookie when there is one."""
    r = await site.browser().get(CONSOLE_PAGE, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 200
    assert f'<meta http-equiv="refresh" content="0;url={CONSOLE_PAGE}">' in await r.text()
    stranger = await site.browser().get(CONSOLE_PAGE, headers={"Sec-Fetch-Site": "same-origin"})
    assert stranger.status == 303 and stranger.headers["Location"].startswith("/console/login")


# ---------------------------------------------------------------- the pages


async def test_the_console_page_embeds_the_csrf_token_and_only_its_own_script(site: Site) -> None:
    b, csrf = await signed_in(site)
    r = await b.get(CONSOLE_PAGE)
    html = await r.text()
    assert page_csrf(html) == csrf
    assert re.search(r'<script src="/static/console\.js\?v=[0-9a-f]{12}" defer></script>', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "no inline event handlers"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Options"] == "DENY"
    for element in ('id="btn-next"', 'id="waiting"', 'id="timer"', 'id="form-add"', 'id="form-budget"'):
        assert element in html


async def test_text_on_the_pages_is_escaped(site: Site) -> None:
    await site.account("mallory", {WSIS: Role.MODERATOR}, '<img src=x onerror="alert(1)">')
    b = site.browser()
    assert (await login(b, "mallory")).status == 303
    html = await (await b.get(CONSOLE_PAGE)).text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    failed = await login(site.browser(), '"><script>alert(1)</script>', "whatever it is")
    text = await failed.text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_an_unknown_session_or_meeting_is_404(site: Site) -> None:
    b, _csrf = await signed_in(site)
    assert (await b.get(f"/console/{WSIS}/no-such-session")).status == 404
    assert (await b.get(f"/meetings/{WSIS}/sessions/no-such-session/live")).status == 404
    assert (await b.get("/meetings/no-such-meeting/sessions/x/live")).status == 404


async def test_the_public_live_page_needs_no_sign_in(site: Site) -> None:
    r = await site.browser().get(f"/meetings/{WSIS}/sessions/{SESSION}/live")
    assert r.status == 200
    html = await r.text()
    assert re.search(r'<script src="/static/live\.js\?v=[0-9a-f]{12}" defer></script>', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert 'name="viewport"' in html and 'id="ask-form"' in html and 'id="withdraw"' in html
    assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
    assert 'name="csrf-token"' not in html


async def test_static_files_have_their_types_and_cache_headers(site: Site) -> None:
    b = site.browser()
    page = await (await b.get(f"/meetings/{WSIS}/sessions/{SESSION}/live")).text()
    versioned = re.search(r'href="(/static/floor\.css\?v=[0-9a-f]{12})"', page)
    assert versioned
    for name, kind in (("console.js", "text/javascript"), ("live.js", "text/javascript"), ("floor.css", "text/css")):
        r = await b.get(f"/static/{name}")
        assert r.status == 200 and r.content_type == kind and r.charset == "utf-8"
        assert r.headers["Cache-Control"] == "no-cache" and r.headers["X-Content-Type-Options"] == "nosniff"
        again = await b.get(f"/static/{name}", headers={"If-None-Match": r.headers["ETag"]})
        assert again.status == 304
    r = await b.get(versioned.group(1))
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for missing in ("/static/app.js", "/static/..%2Fconsole.py", "/static/console.py"):
        assert (await b.get(missing)).status == 404, missing


# ---------------------------------------------------------------- the add-account command


def run_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "FLOORBRIDGE_NEW_PASSWORD"}
    environment.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env=environment,
                          stdin=subprocess.DEVNULL)


async def test_add_account_reads_the_password_from_the_environment_only(tmp_path: Path) -> None:
    config = tmp_path / "floorbridge.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/cli.db\nlogging:\n  format: text\n")
    imported = run_cli(config, "import-agenda", "wsis-2025", str(ROOT / "config/meetings/wsis-2025.yaml"))
    assert imported.returncode == 0, imported.stderr

    no_password = run_cli(config, "add-account", "chair", "--meeting", "wsis-2025", "--role", "moderator")
    assert no_password.returncode == 2 and "FLOORBRIDGE_NEW_PASSWORD" in no_password.stderr
    short = run_cli(config, "add-account", "chair", "--meeting", "wsis-2025", "--role", "moderator",
                    env={"FLOORBRIDGE_NEW_PASSWORD": "too short"})
    assert short.returncode == 2 and "12 characters" in short.stderr
    typo = run_cli(config, "add-account", "chair", "--meeting", "wsis-2052", "--role", "moderator",
                   env={"FLOORBRIDGE_NEW_PASSWORD": PASSWORD})
    assert typo.returncode == 1 and "wsis-2052" in typo.stderr
    made = run_cli(config, "add-account", "chair", "--meeting", "wsis-2025", "--role", "moderator",
                   "--name", "Chair of the plenary", env={"FLOORBRIDGE_NEW_PASSWORD": PASSWORD})
    assert made.returncode == 0, made.stderr
    assert "created console account chair: moderator of wsis-2025" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    try:
        auth = ConsoleAuth(SqlConsoleStore(store.engine), Staff(), public_url=PUBLIC)
        account = await auth.check_password("chair", PASSWORD)
        assert account is not None and account.display_name == "Chair of the plenary"
        assert account.roles == {WSIS: Role.MODERATOR}
        assert account.password_hash.startswith("$argon2id$")
        assert await auth.check_password("chair", "wrong password here") is None
    finally:
        await store.close()
