from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from openapi_spec_validator import validate

from .conftest import V1, Served


async def test_meetings_and_sessions(served: Served) -> None:
    r = await served.client.get("/api/v1/meetings")
    assert r.status == 200
    [m] = (await r.json())["meetings"]
    assert m["id"] == "fg-dlt-1" and m["timezone"] == "Europe/Zurich" and m["latest_version"] == 1
    assert m["feeds"]["all"] == {"https": "https://bridge.example.org/ical/fg-dlt-1.ics",
                                 "webcal": "webcal://bridge.example.org/ical/fg-dlt-1.ics"}
    sessions = await (await served.client.get("/api/v1/meetings/fg-dlt-1/sessions")).json()
    assert [s["id"] for s in sessions["sessions"]] == ["opening", "structure", "usecases"]
    assert sessions["sessions"][0]["start"] == "2017-10-17T07:30:00+00:00"  # 09:30 in Geneva, stored in UTC
    wg = await (await served.client.get("/api/v1/meetings/fg-dlt-1/sessions?track=working-group-1")).json()
    assert [s["id"] for s in wg["sessions"]] == ["usecases"]
    one = await (await served.client.get("/api/v1/meetings/fg-dlt-1/sessions/opening")).json()
    assert one["room"] == "Popov" and one["sequence"] == 0
    deadlines = await (await served.client.get("/api/v1/meetings/fg-dlt-1/deadlines")).json()
    assert deadlines["deadlines"][0]["due"] == {"date": "2017-09-17"}
    assert deadlines["feed"]["webcal"].endswith("/ical/fg-dlt-1/deadlines.ics")


async def test_versions_and_changelog(served: Served) -> None:
    moved = replace(V1[0], room="Room C")
    await served.publish([moved, *V1[1:]], datetime(2017, 9, 5, 8, 0, tzinfo=UTC))
    versions = await (await served.client.get("/api/v1/meetings/fg-dlt-1/versions")).json()
    # v1 added three sessions and the visa deadline
    assert [(v["number"], v["change_count"]) for v in versions["versions"]] == [(1, 4), (2, 1)]
    v2 = await (await served.client.get("/api/v1/meetings/fg-dlt-1/versions/2")).json()
    assert v2["changelog"]["changes"] == [
        {"kind": "moved-room", "subject": "opening", "title": "Session opening", "old": "Popov", "new": "Room C",
         "tracks": ["Plenary"]}
    ]
    changelog = await (await served.client.get("/api/v1/meetings/fg-dlt-1/versions/2/changelog")).json()
    assert changelog == v2["changelog"] and changelog["from_version"] == 1
    old = await (await served.client.get("/api/v1/meetings/fg-dlt-1/sessions/opening?version=1")).json()
    assert old["room"] == "Popov" and old["version"] == 1


async def test_bad_requests_name_what_is_wrong(served: Served) -> None:
    r = await served.client.get("/api/v1/meetings/fg-dlt-1/sessions?version=abc")
    assert r.status == 400
    err = (await r.json())["error"]
    assert err["code"] == "invalid_input" and "'version'" in err["message"] and "'abc'" in err["message"]
    r = await served.client.get("/api/v1/meetings/fg-dlt-1/versions/7")
    assert r.status == 404 and "no version 7 (latest is 1)" in (await r.json())["error"]["message"]
    r = await served.client.get("/api/v1/meetings/nope")
    assert r.status == 404 and "'nope'" in (await r.json())["error"]["message"]
    r = await served.client.get("/api/v1/meetings/fg-dlt-1/sessions/nope")
    assert r.status == 404 and "no session 'nope'" in (await r.json())["error"]["message"]
    r = await served.client.get("/api/v1/no-such-endpoint")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_openapi_is_valid_and_documents_every_route(served: Served) -> None:
    doc = await (await served.client.get("/api/v1/openapi.json")).json()
    validate(doc)
    documented = set(doc["paths"])
    app = served.client.server.app
    assert app is not None
    for resource in app.router.resources():
        path = resource.canonical
        if path.startswith(("/api/", "/ical/")) or path == "/healthz":
            normalised = path.replace("{meeting:[a-z0-9-]+}", "{meeting}").replace("{track:[a-z0-9-]+}", "{track}")
            assert normalised in documented, path


async def test_healthz(served: Served) -> None:
    r = await served.client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"


async def test_pages_offer_webcal_links_and_escape_agenda_text(served: Served) -> None:
    r = await served.client.get("/")
    html = await r.text()
    assert "webcal://bridge.example.org/ical/fg-dlt-1.ics" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    page = await served.client.get("/meetings/fg-dlt-1")
    html = await page.text()
    assert "webcal://bridge.example.org/ical/fg-dlt-1/tracks/working-group-1.ics" in html
    assert "webcal://bridge.example.org/ical/fg-dlt-1/deadlines.ics" in html
    assert "09:30–10:00" in html  # local Geneva time
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in html
