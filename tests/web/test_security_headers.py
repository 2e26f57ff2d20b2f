"""Every route of the whole web application (built from the real services, as `run.py serve`
builds it) is walked, signed in and not: each HTML page carries the CSP and the security headers,
and every answer, HTML or not, error or not, carries nosniff and a CSP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.web.console_auth import SESSION_COOKIE
from floorbridge.adapters.web.personal import PersonalFeeds
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.app import services, web_options
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, UserRef
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.slots import Mode, ProtocolRank, SlotCall, SlotForm, Stakeholder

ROOT = Path(__file__).resolve().parents[2]
WSIS = MeetingId("wsis-2025")
SESSION = SessionId("hls-statements-1")
PUBLIC = "https://bridge.example.org"
SECRETARIAT = UserRef(Platform.TELEGRAM, "7")


@dataclass
class World:
    app: web.Application
    server: TestServer
    params: dict[str, str]  # a real value for each route parameter
    tokens: dict[str, str]  # route -> the {token} it needs
    csrf: str
    session_token: str


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    config = tmp_path / "floorbridge.yaml"
    config.write_text(json.dumps({
        "server": {"public_url": PUBLIC},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/walk.db"},
        "meetings": {"seed": [str(ROOT / "config/meetings/wsis-2025.yaml")],
                     "staff": {WSIS: {"secretariat": [str(SECRETARIAT)]}}},
    }))
    settings = load_settings(config, env={})
    async with services(settings) as svc:
        await svc.seed()
        snapshots = Snapshots(svc.store, poll_seconds=3600)
        await snapshots.start()
        slots = svc.chat.slots
        assert slots is not None and svc.chat.floor is not None
        await slots.open_call(SlotCall(WSIS, "hls", "High-level statements", datetime.now(UTC) + timedelta(days=30),
                                       (SESSION,)))
        filed = await slots.submit(WSIS, "hls", SlotForm("Amina Diallo", "Minister", "Kenya", Stakeholder.GOVERNMENT,
                                                         ProtocolRank.MINISTER, SESSION, Mode.REMOTE, "en"), "web:x")
        await svc.chats.save_profile(ChatProfile(ChatRef(Platform.TELEGRAM, "1001"), feed_token="P" * 43))
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "secretariat@itu.int", "wsis-2025@lists.example.org", "Visas"
        mail["Date"], mail["Message-ID"] = format_datetime(datetime.now(UTC)), make_msgid()
        mail.set_content("Dear colleagues,\n\nVisa requests are due by 30 April 2025.\n")
        receipt = await svc.mail.receive(bytes(mail), channel="http", meeting_id=WSIS)
        link = await svc.console.login_link(SECRETARIAT)
        token, signed_in = await svc.console.open_session(str(SECRETARIAT))
        app = create_app(snapshots, web_options(settings), personal_feeds=PersonalFeeds(svc.chats),
                         floor_desk=svc.chat.floor, speaker_store=svc.speakers, console=svc.console, slots=slots,
                         mail_intake=svc.mail, mail_key=b"k" * 32)
        server = TestServer(app)
        await server.start_server()
        track = next(k for k in snapshots.get(WSIS).feeds if k.startswith("tracks/")).removeprefix("tracks/")
        try:
            yield World(
                app, server,
                params={"meeting": WSIS, "session": SESSION, "call": "hls", "ref": filed.ref, "id": str(receipt.id),
                        "number": "1", "track": track, "name": "console.js", "format": "csv"},
                tokens={"/ical/personal/{token}.ics": "P" * 43, "/ical/slot/{token}.ics": filed.feed_token,
                        "/console/login/{token}": link.rsplit("/", 1)[1]},
                csrf=signed_in.csrf, session_token=token,
            )
        finally:
            await server.close()
            await snapshots.stop()
            await svc.chat.floor.stop()


def _get_paths(w: World) -> list[str]:
    """A real URL for every GET route: a route whose parameters are not known fails the test (so
    that a new route is walked too)."""
    paths = []
    for resource in w.app.router.resources():
        if not any(route.method == "GET" for route in resource):
            continue
        canonical = resource.canonical
        info = resource.get_info()
        if "path" in info:
            paths.append(info["path"])
            continue
        names = [n for n in ("meeting", "session", "call", "ref", "id", "number", "track", "name", "format", "token")
                 if "{" + n in info.get("formatter", canonical)]
        values = {n: w.tokens[canonical] if n == "token" else w.params[n] for n in names}
        assert all(values.values()), f"no value for the parameters of {canonical}"
        paths.append(str(resource.url_for(**values)))
    return paths


def check(path: str, status: int, headers: dict[str, str], html_seen: set[str]) -> None:
    where = f"{path} ({status})"
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp, where
    if headers.get("Content-Type", "").startswith("text/html"):
        html_seen.add(path)
        assert "default-src 'none'" in csp and "unsafe-eval" not in csp, where
        script = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
        assert "unsafe-inline" not in script and "*" not in script and "http" not in script, where
        assert "form-action 'self'" in csp, where
        assert headers.get("X-Frame-Options") == "DENY" and headers.get("Referrer-Policy") == "no-referrer", where
    assert headers.get("Strict-Transport-Security") == "max-age=31536000", where  # public over https


async def test_every_route_signed_in_or_not_carries_the_security_headers(world: World) -> None:
    paths = _get_paths(world)
    extra = ["/no/such/page", f"/meetings/{WSIS}/sessions/nope/live", "/console/nope", "/api/v1/meetings/nope",
             f"/meetings/{WSIS}/announcements/999999", "/console/login?next=/console"]
    html_seen: set[str] = set()
    for signed_in in (False, True):
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            if signed_in:
                client.cookie_jar.update_cookies({SESSION_COOKIE: world.session_token}, world.server.make_url("/"))
            for path in [*paths, *extra]:
                async with client.get(world.server.make_url(path), allow_redirects=False,
                                      headers={"Accept": "text/html,*/*"}) as r:
                    check(path, r.status, dict(r.headers), html_seen)
                if not signed_in:
                    client.cookie_jar.clear()  # the login link signs in: the stranger stays a stranger
            # A page answering a POST: the slot form with a problem, a failed sign-in, a form over the size limit.
            for path, data in ((f"/meetings/{WSIS}/slots/hls", {"name": ""}),
                               ("/console/login", {"username": "x", "password": "y"}),
                               (f"/meetings/{WSIS}/slots/hls", {"name": "x" * 2_000_000})):
                async with client.post(world.server.make_url(path), data=data, allow_redirects=False) as r:
                    check(path, r.status, dict(r.headers), html_seen)
                if not signed_in:
                    client.cookie_jar.clear()  # the login link signs in: the stranger stays a stranger
            async with client.delete(world.server.make_url("/console"), allow_redirects=False) as r:  # 405
                check("DELETE /console", r.status, dict(r.headers), html_seen)
    pages = {"/", f"/meetings/{WSIS}", "/console", f"/console/{WSIS}", f"/console/{WSIS}/{SESSION}",
             f"/meetings/{WSIS}/sessions/{SESSION}/live", f"/meetings/{WSIS}/slots/hls",
             f"/meetings/{WSIS}/sessions/{SESSION}/speakers-list", f"/meetings/{WSIS}/announcements",
             f"/meetings/{WSIS}/announcements/{world.params['id']}", f"/console/{WSIS}/mail", "/console/login"}
    assert pages <= html_seen, sorted(pages - html_seen)
