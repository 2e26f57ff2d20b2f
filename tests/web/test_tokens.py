"""Private links: a speaking-slot request's calendar link can be replaced by its requester and
revoked by the secretariat (the old one then answers 404, and a review prepared on the old copy
cannot bring it back); every token is 256 random bits; login links and sessions are stored only
as hashes. (A personal feed's `ical reset` is tested in tests/bots/test_personal_feed.py.)"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from floorbridge.adapters.slot_service import SlotService
from floorbridge.bots.conversation import new_feed_token
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.slots import Mode, ProtocolRank, SlotForm, Stakeholder

from .test_console_http import CHAIR_IN_CHAT
from .test_console_http import open_site as open_console_site
from .test_slots_api import BASE, PUBLIC, SECRETARIAT, Browser, Site, file, open_site

URLSAFE_256_BITS = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


async def _filed(site: Site) -> tuple[Browser, dict[str, Any], str]:
    """A delegate who filed a request in an open call: their browser, the answer, the feed's path."""
    await site.open_call()
    delegate = site.browser()
    filed = await file(site, delegate)
    return delegate, filed, filed["feed_url"].removeprefix(PUBLIC)


async def test_the_requester_replaces_the_calendar_link_and_the_old_one_is_dead(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        delegate, filed, old = await _filed(site)
        assert (await delegate.call("GET", old)).status == 200
        renewed = await delegate.call("POST", f"/api/v1/slot-requests/{filed['ref']}/feed-token")
        assert renewed.status == 200, await renewed.text()
        new = (await renewed.json())["feed_url"].removeprefix(PUBLIC)
        assert new != old and URLSAFE_256_BITS.match(new.removeprefix("/ical/slot/").removesuffix(".ics"))
        assert (await delegate.call("GET", old)).status == 404
        assert (await delegate.call("GET", new)).status == 200
        mine = await (await delegate.call("GET", f"/api/v1/slot-requests/{filed['ref']}")).json()
        assert mine["feed_url"].endswith(new)
        # Nobody else can, and a page of another site cannot make the browser do it.
        stranger = site.browser()
        assert (await stranger.call("POST", f"/api/v1/slot-requests/{filed['ref']}/feed-token")).status == 404
        foreign = await delegate.call("POST", f"/api/v1/slot-requests/{filed['ref']}/feed-token",
                                      headers={"Sec-Fetch-Site": "cross-site"})
        assert foreign.status == 403
        assert (await delegate.call("GET", new)).status == 200


async def test_the_secretariat_revokes_a_link_without_seeing_the_new_one(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        delegate, filed, old = await _filed(site)
        secretariat = await site.staff(SECRETARIAT)
        listed = await (await secretariat.call("GET", f"{BASE}/slot-calls/hls/requests")).json()
        stale = listed["requests"][0]["updated_at"]
        revoke = f"{BASE}/slot-requests/{filed['ref']}/feed-token"
        site.clock.advance(60)
        assert (await secretariat.call("POST", revoke, csrf=False)).status == 403  # CSRF token needed
        answer = await secretariat.call("POST", revoke)
        assert answer.status == 200 and await answer.json() == {"ref": filed["ref"], "revoked": True}
        assert (await delegate.call("GET", old)).status == 404
        # A review prepared on the copy from before the revocation is refused, not applied with the old token.
        review = await secretariat.call("POST", f"{BASE}/slot-requests/{filed['ref']}/review",
                                        json={"decision": "waitlisted", "expected_updated_at": stale})
        assert review.status == 409
        assert (await delegate.call("GET", old)).status == 404
        mine = await (await delegate.call("GET", f"/api/v1/slot-requests/{filed['ref']}")).json()
        assert (await delegate.call("GET", mine["feed_url"].removeprefix(PUBLIC))).status == 200
        assert (await secretariat.call("POST", f"{BASE}/slot-requests/HLS-NOPE00/feed-token")).status == 404
        other = await site.staff(SECRETARIAT)
        assert (await other.call("POST", f"/api/v1/meetings/other-meeting/slot-requests/{filed['ref']}/feed-token")
                ).status == 403


async def test_every_token_is_256_random_bits(tmp_path: Path) -> None:
    assert URLSAFE_256_BITS.match(new_feed_token())
    async with open_site(tmp_path) as site:
        await site.open_call()
        service: SlotService = site.service
        tokens = set()
        for n in range(5):
            filed = await service.submit(MeetingId("wsis-2025"), "hls", _form(n), f"web:{n}")
            tokens.add(filed.feed_token)
        assert len(tokens) == 5 and all(URLSAFE_256_BITS.match(t) for t in tokens)
    async with open_console_site(tmp_path / "c") as site:
        link = await site.console.login_link(CHAIR_IN_CHAT)
        session_token, session = await site.console.open_session("account:chair")
        for token in (link.rsplit("/", 1)[1], session_token, session.csrf):
            assert URLSAFE_256_BITS.match(token), token


def _form(n: int) -> SlotForm:
    return SlotForm(f"Speaker {n}", "Minister", f"Delegation {n}", Stakeholder.GOVERNMENT, ProtocolRank.MINISTER,
                    SessionId("hls-statements-1"), Mode.REMOTE, "en")


async def test_login_links_and_sessions_are_stored_only_as_hashes(tmp_path: Path) -> None:
    async with open_console_site(tmp_path) as site:
        link = await site.console.login_link(CHAIR_IN_CHAT)
        session_token, _session = await site.console.open_session("account:chair")
        b = site.browser()
        assert (await b.get(link.removeprefix(PUBLIC))).status == 303
        cookie = b.session.cookie_jar.filter_cookies(site.server.make_url("/"))["fb_console"].value
    with sqlite3.connect(tmp_path / "console.db") as db:
        stored = repr(db.execute("SELECT * FROM login_links").fetchall() + db.execute(
            "SELECT * FROM console_sessions").fetchall())
    for secret in (link.rsplit("/", 1)[1], session_token, cookie):
        assert secret not in stored
