"""The speaking-slot pages without JavaScript: the request form (deadline in Geneva time, human
labels, errors next to their fields with the answers kept), its acknowledgement with the reference
and the private feed, and the public rolling list of speakers, all escaped under a strict CSP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .test_slots_api import AFTER, BASE, PUBLIC, SECRETARIAT, WSIS, Site, form, open_site

PAGE = "/meetings/wsis-2025/slots/hls"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as s:
        await s.open_call(title="High-level segment <script>alert(1)</script>")
        yield s


async def test_the_form_has_labels_human_choices_and_the_deadline_in_geneva_time(site: Site) -> None:
    r = await site.browser().call("GET", PAGE)
    assert r.status == 200
    html = await r.text()
    assert "default-src 'none'" in r.headers["Content-Security-Policy"] and "<script" not in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Request a speaking slot by <strong>30 April 2025 23:59 CEST (Europe/Zurich)</strong>" in html
    for name in ("name", "title", "delegation", "stakeholder", "rank", "session", "mode", "language"):
        assert f'<label for="{name}">' in html and f'id="{name}"' in html
    assert '<option value="head_of_state_or_government">Head of State or Government</option>' in html
    assert '<option value="civil_society">Civil society</option>' in html
    assert '<option value="remote">Remotely</option>' in html and '<option value="fr">Français</option>' in html
    assert "Wed 09 July, 11:00–12:30 — High-level segment: policy statements (1)" in html
    assert '<form method="post">' in html and "csrf" not in html.lower()
    assert r.headers["Cache-Control"] == "no-store"


async def test_errors_are_shown_next_to_their_fields_and_the_answers_are_kept(site: Site) -> None:
    browser = site.browser()
    r = await browser.call("POST", PAGE, data=form(name="Amina <b>Diallo</b>", rank="emperor", session="",
                                                   delegation=""))
    assert r.status == 400
    html = await r.text()
    assert 'value="Amina &lt;b&gt;Diallo&lt;/b&gt;"' in html  # kept, escaped
    assert re.search(r'id="rank"[^>]*aria-invalid="true".*?<p class="error" id="rank-error">&#x27;emperor&#x27; is '
                     r"not one of:", html, re.S)
    assert '<p class="error" id="delegation-error">is required</p>' in html
    assert '<p class="error" id="session-error">is required</p>' in html
    assert '<option value="fr" selected>Français</option>' in html
    assert "Please correct 3 field(s) below." in html
    assert await site.service.store.requests(WSIS) == []


async def test_a_good_request_is_acknowledged_with_its_reference_and_private_feed(site: Site) -> None:
    browser = site.browser()
    r = await browser.call("POST", PAGE, data=form())
    assert r.status == 200, await r.text()
    html = await r.text()
    [stored] = await site.service.store.requests(WSIS)
    assert f'<span class="ref">{stored.ref}</span>' in html
    feed = f"{PUBLIC}/ical/slot/{stored.feed_token}.ics"
    assert f'href="webcal://bridge.example.org/ical/slot/{stored.feed_token}.ics"' in html and feed in html
    assert stored.requester == f"web:{browser.cookie('fb_delegate')}"
    again = await (await browser.call("GET", PAGE)).text()
    assert "Your requests from this browser" in again and stored.ref in again
    assert stored.ref not in await (await site.browser().call("GET", PAGE)).text()  # nobody else sees it
    r = await site.browser().call("POST", PAGE, data=form(delegation="kenya"))
    assert r.status == 422 and "already has a speaker in High-level segment" in await r.text()
    assert 'value="kenya"' in await r.text()  # the answers are kept


async def test_after_the_deadline_the_form_is_closed(site: Site) -> None:
    site.clock.now = AFTER
    html = await (await site.browser().call("GET", PAGE)).text()
    assert "Requests closed on 30 April 2025 23:59 CEST (Europe/Zurich)." in html and "<form" not in html
    r = await site.browser().call("POST", PAGE, data=form())
    assert r.status == 422 and "The deadline passed on 30 April 2025 23:59 CEST" in await r.text()


async def test_a_cross_site_post_is_refused(site: Site) -> None:
    r = await site.browser().call("POST", PAGE, data=form(), headers={"Origin": "https://evil.example"})
    assert r.status == 403
    assert await site.service.store.requests(WSIS) == []


async def test_the_rolling_list_page(site: Site) -> None:
    secretariat = await site.staff(SECRETARIAT)
    for n, (name, delegation, start) in enumerate(
            [("Alar Karis", "Estonia", "11:00"), ("Amina <b>Diallo</b>", "Kenya", "11:05")], start=1):
        browser = site.browser()
        await browser.call("POST", f"{BASE}/slot-calls/hls/requests", json=form(name=name, delegation=delegation))
        [mine] = [r for r in await site.service.store.requests(WSIS)
                  if r.form.name == name]
        r = await secretariat.call("POST", f"{BASE}/slot-requests/{mine.ref}/review", json={
            "decision": "approved", "order": n, "start": f"2025-07-09T{start}:00+02:00"})
        assert r.status == 200, await r.text()
    r = await site.browser().call("GET", "/meetings/wsis-2025/sessions/hls-statements-1/speakers-list")
    assert r.status == 200
    html = await r.text()
    assert 'name="viewport"' in html and "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "Wednesday 09 July 2025, 11:00–12:30 (Europe/Zurich)" in html
    first, second = html.index("Alar Karis"), html.index("Amina &lt;b&gt;Diallo&lt;/b&gt;")
    assert first < second and "<b>Diallo" not in html
    assert '<li value="2"><span class="when">11:05</span>' in html
    assert "web:" not in html and "ical/slot" not in html
    empty = await (await site.browser().call("GET", "/meetings/wsis-2025/sessions/hls-statements-2/speakers-list"))\
        .text()
    assert "No speakers have been announced" in empty
    assert (await site.browser().call("GET", "/meetings/wsis-2025/sessions/nope/speakers-list")).status == 404
