"""What fits in a small body but is still costly or unanswerable is refused with a 400 (or 413)
that names the limit, never a 500: JSON nested thousands deep, numbers of thousands of digits,
digits that are not ASCII, thousands of problems, a megabyte echoed back in an error."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession, CookieJar

from floorbridge.adapters.web.console_auth import SESSION_COOKIE
from floorbridge.adapters.web.limits import MAX_DEPTH, MAX_PROBLEMS
from floorbridge.adapters.web.mail import SIGNATURE_HEADER, TIMESTAMP_HEADER

from .test_security_headers import SESSION, WSIS, World, world

__all__ = ["world"]  # the fixture: the whole application, built from the real services

ASK = f"/api/v1/meetings/{WSIS}/sessions/{SESSION}/speakers/requests"
FILE = f"/api/v1/meetings/{WSIS}/slot-calls/hls/requests"


async def _call(w: World, method: str, path: str, *, staff: bool = False, **kwargs: Any) -> tuple[int, Any]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
        headers = dict(kwargs.pop("headers", {}))
        if staff:
            client.cookie_jar.update_cookies({SESSION_COOKIE: w.session_token}, w.server.make_url("/"))
            headers["X-CSRF-Token"] = w.csrf
        async with client.request(method, w.server.make_url(path), headers=headers, **kwargs) as r:
            body = await r.text()
            assert len(body) < 20_000, f"{method} {path}: an answer of {len(body)} characters"
            return r.status, (await r.json() if r.content_type == "application/json" else body)


async def test_json_nested_too_deep_is_refused_naming_the_depth(world: World) -> None:
    for depth in (MAX_DEPTH + 1, 100_000):  # the second would exhaust the parser's recursion
        body = '{"name": ' + "[" * depth + "]" * depth + "}"
        for path in (ASK, FILE):
            status, answer = await _call(world, "POST", path, data=body, headers={"Content-Type": "application/json"})
            assert status == 400, (path, depth, answer)
            assert answer["error"]["problems"] == [{"where": "body", "what": f"is nested deeper than {MAX_DEPTH} "
                                                                             "levels"}]


async def test_a_body_in_an_unknown_or_wrong_charset_is_refused_naming_it(world: World) -> None:
    status, answer = await _call(world, "POST", ASK, data='{"name": "A"}',
                                 headers={"Content-Type": "application/json; charset=klingon"})
    assert status == 400
    assert answer["error"]["problems"] == [{"where": "Content-Type",
                                            "what": "names the charset 'klingon', which is unknown"}]
    status, answer = await _call(world, "POST", ASK, data=b'{"name": "\xff"}',
                                 headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["problems"] == [{"where": "body", "what": "is not utf-8 text"}]


async def test_a_number_of_thousands_of_digits_is_refused(world: World) -> None:
    body = '{"name": "A", "remote": ' + "9" * 5000 + "}"
    status, answer = await _call(world, "POST", ASK, data=body, headers={"Content-Type": "application/json"})
    assert status == 400 and "is not valid JSON" in answer["error"]["message"]


async def test_a_huge_refused_value_is_not_echoed(world: World) -> None:
    status, answer = await _call(world, "POST", ASK, json={"name": "A", "speech_type": "x" * 500_000})
    assert status == 400
    assert answer["error"]["problems"][0]["where"] == "speech_type"
    assert len(answer["error"]["problems"][0]["what"]) < 300


async def test_thousands_of_problems_are_listed_up_to_a_cap(world: World) -> None:
    review = {f"field{n}": n for n in range(5000)}
    status, answer = await _call(world, "POST", f"/api/v1/meetings/{WSIS}/slot-requests/{world.params['ref']}/review",
                                 staff=True, json=review)
    assert status == 400
    problems = answer["error"]["problems"]
    assert len(problems) == MAX_PROBLEMS and problems[-1]["what"].startswith("… and ")
    calls = {"title": "t", "deadline": "2099-01-01T00:00:00Z", "sessions": [f"s{n}" for n in range(5000)]}
    status, answer = await _call(world, "PUT", f"/api/v1/meetings/{WSIS}/slot-calls/big", staff=True, json=calls)
    assert status == 400 and any(p["what"].startswith("lists 5000 sessions") for p in answer["error"]["problems"])
    calls = {"title": "t", "deadline": "2099-01-01T00:00:00Z", "sessions": [SESSION], "languages": ["en"] * 500}
    status, answer = await _call(world, "PUT", f"/api/v1/meetings/{WSIS}/slot-calls/big", staff=True, json=calls)
    assert status == 400 and "at most 30" in answer["error"]["problems"][0]["what"]


async def test_numbers_in_paths_and_queries_are_ascii_and_short(world: World) -> None:
    for path in (f"/api/v1/meetings/{WSIS}/versions/²", f"/api/v1/meetings/{WSIS}/versions/{'9' * 5000}",
                 f"/api/v1/meetings/{WSIS}/sessions?version=²", f"/api/v1/meetings/{WSIS}/sessions?version={'9' * 40}",
                 f"/api/v1/meetings/{WSIS}/announcements?before={'9' * 40}",
                 f"/api/v1/meetings/{WSIS}/announcements?limit=²", f"/api/v1/meetings/{WSIS}/announcements/{'9' * 30}"):
        status, answer = await _call(world, "GET", path)
        assert status == 400, (path, answer)
    status, _ = await _call(world, "POST", f"/api/v1/meetings/{WSIS}/mail", data=b"Subject: x\r\n\r\nx",
                            headers={TIMESTAMP_HEADER: "²", SIGNATURE_HEADER: "sha256=00"})
    assert status == 401


async def test_a_body_over_the_cap_is_refused_naming_the_cap(world: World) -> None:
    status, answer = await _call(world, "POST", ASK, json={"name": "x" * (1 << 20)})
    assert status == 413 and "1048576" in answer["error"]["message"]
    status, answer = await _call(world, "POST", f"/meetings/{WSIS}/slots/hls", data={"name": "x" * (1 << 20)})
    assert status == 413 and "1048576" in answer
    status, answer = await _call(world, "POST", ASK, json={"name": "x" * 201})
    assert status == 400 and answer["error"]["problems"][0]["what"] == "is longer than 200 characters"
