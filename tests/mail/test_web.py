"""Mail on the web: the HMAC-signed endpoint, the archive (JSON and sanitized HTML), and the
console's review page with its CSRF-protected actions."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from floorbridge.adapters.web.console_auth import hash_password
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.mail import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.announcements import MailStatus, RelayState
from floorbridge.core.chats import Role
from floorbridge.core.console import ConsoleAccount

from .conftest import LIST_MODERATED, WSIS, MailWorld, letter

KEY = b"k" * 40
PASSWORD = "correct horse battery staple"
BODY = "Dear colleagues,\n\nSpeaking-slot requests must be received no later than 30 April 2025.\n"
ENDPOINT = f"/api/v1/meetings/{WSIS}/mail"


@dataclass
class Web:
    world: MailWorld
    server: TestServer
    client: ClientSession

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def deliver(self, raw: bytes, *, key: bytes = KEY, stamp: int | None = None) -> tuple[int, dict[str, object]]:
        ts = str(int(time.time()) if stamp is None else stamp)
        headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: "sha256=" + signature(key, ts, raw),
                   "Content-Type": "message/rfc822"}
        async with self.client.post(self.url(ENDPOINT), data=raw, headers=headers) as r:
            return r.status, await r.json()


@pytest.fixture
async def web(world: MailWorld) -> AsyncIterator[Web]:
    snapshots = Snapshots(world.svc.store, poll_seconds=3600)
    await snapshots.start()
    app = create_app(snapshots, WebOptions(world.settings.server.public_url), console=world.svc.console,
                     mail_intake=world.intake, mail_key=KEY)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = ClientSession(cookie_jar=CookieJar(unsafe=True))
    try:
        yield Web(world, server, client)
    finally:
        await client.close()
        await server.close()
        await snapshots.stop()


async def test_a_signed_message_is_stored_and_answered_with_its_receipt(web: Web) -> None:
    status, body = await web.deliver(letter(BODY))
    assert status == 202 and body["status"] == "accepted" and body["new"] is True
    mail = await web.world.intake.get(WSIS, int(body["id"]))  # type: ignore[call-overload]
    assert mail.channel == "http"
    status, again = await web.deliver(letter(BODY, message_id=f"<{mail.message_id}>"))  # the same bytes again
    assert status == 202 and again == {**body, "new": False}
    assert (await web.world.intake.get(WSIS, mail.id)).copies == 2


@pytest.mark.parametrize("problem", ["wrong key", "stale", "no signature", "tampered"])
async def test_unsigned_or_badly_signed_messages_are_refused_and_not_stored(web: Web, problem: str) -> None:
    raw = letter(BODY)
    if problem == "wrong key":
        status, body = await web.deliver(raw, key=b"x" * 40)
    elif problem == "stale":
        status, body = await web.deliver(raw, stamp=int(time.time()) - 3600)
    else:
        ts = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: ts}
        if problem == "tampered":
            headers[SIGNATURE_HEADER] = "sha256=" + signature(KEY, ts, raw)
            raw = raw.replace(b"30 April", b"30 March")
        async with web.client.post(web.url(ENDPOINT), data=raw, headers=headers) as r:
            status, body = r.status, await r.json()
    assert status == 401 and body["error"]["code"] == "bad_signature"
    assert await web.world.intake.store.count() == 0


async def test_over_the_cap_is_413_and_unknown_meeting_404(web: Web) -> None:
    status, body = await web.deliver(letter(BODY + "x" * 300_000))
    assert status == 413 and "cap" in str(body["error"])
    ts = str(int(time.time()))
    async with web.client.post(web.url("/api/v1/meetings/nope/mail"), data=b"x",
                               headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: "sha256=" + signature(KEY, ts, b"x")}
                               ) as r:
        assert r.status == 404
    assert await web.world.intake.store.count() == 0


async def test_the_archive_lists_accepted_letters_and_shows_them_as_text(web: Web) -> None:
    html = ("<p>Dear colleagues,</p><p>Requests must be received <b>no later than 30 April 2025</b>.</p>"
            "<script>document.location='https://evil.example'</script><img src='https://tracker.example/p.gif'>")
    _, ok = await web.deliver(letter("", subject="CL-25/18 <script>x</script>", html=html))
    _, bad = await web.deliver(letter(BODY, list_id="spam.example.org"))
    async with web.client.get(web.url(f"/api/v1/meetings/{WSIS}/announcements")) as r:
        listing = await r.json()
    assert [a["id"] for a in listing["announcements"]] == [ok["id"]]  # the quarantine is not public
    assert listing["announcements"][0]["deadlines"][0]["due"] == "2025-04-30"
    async with web.client.get(web.url(f"/api/v1/meetings/{WSIS}/announcements/{bad['id']}")) as r:
        assert r.status == 404
    async with web.client.get(web.url(f"/meetings/{WSIS}/announcements/{ok['id']}")) as r:
        assert r.status == 200
        page = await r.text()
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "<script" not in page.replace("&lt;script", "") and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "tracker.example" not in page and "<img" not in page
    assert "no later than 30 April 2025" in page
    async with web.client.get(web.url(f"/meetings/{WSIS}/announcements")) as r:
        assert f"/announcements/{ok['id']}" in await r.text()
    async with web.client.get(web.url(f"/api/v1/meetings/{WSIS}/announcements?limit=abc")) as r:
        assert r.status == 400 and "limit" in (await r.json())["error"]["message"]


async def _sign_in(web: Web, username: str) -> None:
    store = web.world.svc.console.store
    await store.save_account(ConsoleAccount(username, hash_password(PASSWORD), username,
                                            {WSIS: Role.MODERATOR} if username == "chair" else {}))
    async with web.client.get(web.url("/console/login")) as r:
        token = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert token
    async with web.client.post(web.url("/console/login"), allow_redirects=False,
                               data={"csrf": token.group(1), "username": username, "password": PASSWORD}) as r:
        assert r.status == 303


async def test_the_console_reviews_mail_with_csrf(web: Web) -> None:
    _, held = await web.deliver(letter(BODY, list_id="other.lists.example.org"))
    _, waiting = await web.deliver(letter(BODY, list_id=LIST_MODERATED))
    async with web.client.get(web.url(f"/console/{WSIS}/mail"), allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/console/login")  # not signed in
    await _sign_in(web, "chair")
    async with web.client.get(web.url(f"/console/{WSIS}/mail")) as r:
        page = await r.text()
    assert f'id="mail-{held["id"]}"' in page and f'id="mail-{waiting["id"]}"' in page
    assert "quarantined: List-Id" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    url = web.url(f"/console/{WSIS}/mail/{held['id']}")
    async with web.client.post(url, data={"action": "release"}, allow_redirects=False) as r:
        assert r.status == 403  # no CSRF token
    assert (await web.world.intake.get(WSIS, int(held["id"]))).status is MailStatus.QUARANTINED  # type: ignore[call-overload]
    async with web.client.post(url, data={"action": "release", "csrf": csrf.group(1)}, allow_redirects=False) as r:
        assert r.status == 303
    assert (await web.world.intake.get(WSIS, int(held["id"]))).status is MailStatus.RELEASED  # type: ignore[call-overload]
    url = web.url(f"/console/{WSIS}/mail/{waiting['id']}")
    async with web.client.post(url, data={"action": "relay", "csrf": csrf.group(1)}, allow_redirects=False) as r:
        assert r.status == 303
    assert (await web.world.intake.get(WSIS, int(waiting["id"]))).relay is RelayState.RELAYED  # type: ignore[call-overload]
    mail = await web.world.intake.get(WSIS, int(waiting["id"]))  # type: ignore[call-overload]
    deadline = mail.deadlines[0]
    async with web.client.post(url, data={"action": "accept-deadline", "csrf": csrf.group(1), "deadline": deadline.id,
                                          "kind": "registration", "due": "2025-05-02"}, allow_redirects=False) as r:
        assert r.status == 303
    version = await web.world.svc.store.latest_version(WSIS)
    assert version is not None and {d.id: d.due.isoformat() for d in version.deadlines}[deadline.id] == "2025-05-02"
    async with web.client.post(url, data={"action": "accept-deadline", "csrf": csrf.group(1), "deadline": deadline.id,
                                          "due": "2 May"}, allow_redirects=False) as r:
        assert r.status == 400 and "YYYY-MM-DD" in await r.text()


async def test_the_console_refuses_people_without_a_role(web: Web) -> None:
    await _sign_in(web, "visitor")
    async with web.client.get(web.url(f"/console/{WSIS}/mail")) as r:
        assert r.status == 403
