"""Requests per client address (a token bucket each; 429 with Retry-After over it), the client's
address behind trusted proxies only, and the sign-in throttle on one-time console links."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.ratelimit import TokenBuckets, bucket_key, client_address, networks
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.app import web_options
from floorbridge.core.errors import InvalidInput
from floorbridge.core.tokens import token_hash

from .test_console_http import CHAIR_IN_CHAT, Site, open_site


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every half second
    assert buckets.take("b") == 0  # another address has its own bucket
    now[0] = 0.5
    assert buckets.take("a") == 0 and buckets.take("a") == pytest.approx(0.5)
    now[0] = 100.0
    assert [buckets.take("a") for _ in range(4)] == [0, 0, 0, pytest.approx(0.5)]  # refilled to the burst, not beyond


def test_an_address_flood_does_not_grow_the_table_without_end() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=1, burst=5, clock=lambda: now[0], max_keys=1000)
    for n in range(10_000):
        now[0] += 0.0001
        assert buckets.take(f"10.0.{n // 256}.{n % 256}") == 0  # a new address always gets its burst
    assert len(buckets) <= 1000


def _request(peer: str, forwarded: str | None = None) -> web.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = make_mocked_request("GET", "/", headers=headers)
    request._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
    return request


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = networks(["10.0.0.0/8", "::1"])
    assert client_address(_request("203.0.113.9", "198.51.100.1"), ()) == "203.0.113.9"
    assert client_address(_request("203.0.113.9", "198.51.100.1"), proxies) == "203.0.113.9"  # not a proxy
    assert client_address(_request("10.0.0.5", "198.51.100.1"), proxies) == "198.51.100.1"
    # A client's own header is left of what the proxies appended: the rightmost untrusted hop counts.
    assert client_address(_request("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.0.0.7"), proxies) == "198.51.100.1"
    assert client_address(_request("10.0.0.5", "198.51.100.1, not-an-address"), proxies) == "10.0.0.5"
    assert client_address(_request("10.0.0.5"), proxies) == "10.0.0.5"
    assert bucket_key("2001:db8:1:2:3:4:5:6") == bucket_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert bucket_key("::ffff:198.51.100.1") == "198.51.100.1"


@pytest.fixture
async def small_limit() -> AsyncIterator[TestClient]:
    snapshots = Snapshots(None, poll_seconds=3600)  # type: ignore[arg-type]  # never started: no meetings
    app = create_app(snapshots, WebOptions("https://bridge.example.org", rate_per_second=0.5, rate_burst=5,
                                           trusted_proxies=("127.0.0.1",)))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_over_the_limit_the_answer_is_429_with_retry_after(small_limit: TestClient) -> None:
    delegate = {"X-Forwarded-For": "198.51.100.1"}
    assert [(await small_limit.get("/api/v1/meetings", headers=delegate)).status for _ in range(5)] == [200] * 5
    r = await small_limit.get("/api/v1/meetings", headers=delegate)
    assert r.status == 429 and int(r.headers["Retry-After"]) == 2
    error = (await r.json())["error"]
    assert error["code"] == "too_many_requests"
    assert "5 at once, then 0.5 a second (server.rate_limit)" in error["message"]
    page = await small_limit.get("/", headers=delegate)
    assert page.status == 429 and "too many requests" in await page.text() and page.headers["Retry-After"]
    assert (await small_limit.get("/healthz", headers=delegate)).status == 200  # probes are not counted
    # Nor Telegram's webhook (not configured here: 404, not 429).
    assert (await small_limit.post("/telegram/webhook", headers=delegate)).status == 404
    # Another client behind the same trusted proxy has its own bucket; so does the proxy itself.
    assert (await small_limit.get("/api/v1/meetings", headers={"X-Forwarded-For": "198.51.100.2"})).status == 200
    assert (await small_limit.get("/api/v1/meetings")).status == 200


async def test_a_forged_header_from_an_untrusted_address_does_not_escape_the_limit() -> None:
    snapshots = Snapshots(None, poll_seconds=3600)  # type: ignore[arg-type]
    app = create_app(snapshots, WebOptions("https://bridge.example.org", rate_per_second=0.5, rate_burst=3))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        statuses = [(await client.get("/api/v1/meetings", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status
                    for n in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_the_default_lets_a_venue_behind_one_address_through_and_can_be_turned_off(tmp_path: Path) -> None:
    snapshots = Snapshots(None, poll_seconds=3600)  # type: ignore[arg-type]
    config = tmp_path / "floorbridge.yaml"
    config.write_text("server: {}\n")
    defaults = web_options(load_settings(config, env={}))
    assert defaults.rate_limit and defaults.rate_burst >= 1000 and defaults.rate_per_second >= 50
    config.write_text("server:\n  rate_limit:\n    enabled: false\n    per_address_per_second: 0.1\n    burst: 3\n")
    app = create_app(snapshots, web_options(load_settings(config, env={})))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        statuses = {(await client.get("/api/v1/meetings")).status for _ in range(50)}
    assert statuses == {200}


def test_the_settings_name_a_bad_proxy_and_a_bad_limit_at_their_lines(tmp_path: Path) -> None:
    config = tmp_path / "floorbridge.yaml"
    config.write_text("server:\n  rate_limit:\n    per_address_per_second: 0\n    burst: 10\n"
                      "  trusted_proxies: [10.0.0.0/8, proxy.example.org]\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(config, env={})
    text = str(caught.value)
    assert "floorbridge.yaml:3: server.rate_limit.per_address_per_second" in text
    assert "floorbridge.yaml:5: server.trusted_proxies" in text and "'proxy.example.org' is not an IP address" in text
    config.write_text(json.dumps({"server": {"rate_limit": {"per_address_per_second": 200, "burst": 5000},
                                             "trusted_proxies": ["10.0.0.0/8", "::1"]}}))
    options = web_options(load_settings(config, env={}))
    assert (options.rate_per_second, options.rate_burst, options.trusted_proxies) == (200, 5000,
                                                                                      ("10.0.0.0/8", "::1/128"))


# ---------------------------------------------------------------- one-time console links


async def _dead_links(site: Site, count: int) -> list[int]:
    b = site.browser()
    return [(await b.get(f"/console/login/{'x' * 20}{n:04d}{'y' * 20}")).status for n in range(count)]


async def test_dead_login_links_are_throttled_like_failed_sign_ins(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        assert await _dead_links(site, 10) == [403] * 10
        link = await site.console.login_link(CHAIR_IN_CHAT)
        b = site.browser()
        r = await b.get(link.removeprefix("https://bridge.example.org"))
        assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        assert "Too many failed sign-ins" in await r.text()
        # The held attempt did not spend the link.
        token = link.rsplit("/", 1)[1]
        assert await site.console.store.use_login_link(token_hash(token), site.clock()) == str(CHAIR_IN_CHAT)
