"""The feed fast path, spoken to over raw sockets: what it answers itself, what it hands to aiohttp."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import icalendar
import pytest
from aiohttp.test_utils import TestClient

from floorbridge.adapters.web.fastpath import FastPath
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app

from .conftest import PUBLIC, FastPathTestServer, Served

pytestmark = pytest.mark.parametrize("served", ["fast-path"], indirect=True)

FEED = "/ical/fg-dlt-1.ics"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_reply(reader: asyncio.StreamReader, *, head_request: bool = False) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    length = int(headers.get("content-length", "0"))
    body = b"" if head_request or status in (204, 304) else await asyncio.wait_for(reader.readexactly(length), 5)
    return Reply(status, headers, body)


def fast_path(served: Served) -> FastPath:
    server = served.client.server
    assert isinstance(server, FastPathTestServer) and server.site is not None
    return server.site.fast_path


@pytest.fixture
async def conn(served: Served) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = served.client.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


def get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def test_feed_requests_are_answered_on_the_fast_path(served: Served, conn: Conn) -> None:
    reader, writer = conn
    writer.write(get(FEED))
    full = await read_reply(reader)
    assert full.status == 200
    assert full.headers["content-type"] == "text/calendar; charset=utf-8"
    assert full.headers["date"].endswith(" GMT")
    # The same headers as any answer of the app (the fast path is past its response hook).
    assert full.headers["x-content-type-options"] == "nosniff"
    assert full.headers["content-security-policy"].startswith("default-src 'none'")
    assert len(icalendar.Calendar.from_ical(full.body).walk("VEVENT")) == 3
    writer.write(get(FEED, f"If-None-Match: {full.headers['etag']}"))
    not_modified = await read_reply(reader)
    assert not_modified.status == 304 and not_modified.headers["etag"] == full.headers["etag"]
    writer.write(get(FEED, "Accept-Encoding: gzip"))
    assert gzip.decompress((await read_reply(reader)).body) == full.body
    writer.write(get("/ical/fg-dlt-1/tracks/plenary.ics?x=1", method="HEAD"))
    head = await read_reply(reader, head_request=True)
    assert head.status == 200 and int(head.headers["content-length"]) > 0
    writer.write(get(FEED))
    assert (await read_reply(reader)).body == full.body
    assert (fast_path(served).answered, fast_path(served).handed_over) == (5, 0)


async def test_pipelined_requests_keep_their_order_across_the_hand_over(served: Served, conn: Conn) -> None:
    reader, writer = conn
    writer.write(get(FEED) + get("/ical/fg-dlt-1/deadlines.ics") + get("/api/v1/meetings") + get(FEED))
    first, second, third, fourth = [await read_reply(reader) for _ in range(4)]
    assert first.status == second.status == third.status == fourth.status == 200
    assert b"usecases@fg-dlt-1.floorbridge" in first.body
    assert b"Visa support requests" in second.body
    assert json.loads(third.body)["meetings"][0]["id"] == "fg-dlt-1"
    assert fourth.body == first.body  # aiohttp now owns the connection and serves the feed the same
    assert (fast_path(served).answered, fast_path(served).handed_over) == (2, 1)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/ical/no-such-meeting.ics"), 404),
        (get("/ical/fg-dlt-1/tracks/no-such-track.ics"), 404),
        (get(FEED, method="POST"), 405),
        (get(FEED, "Bad header line"), 400),
        (b"GET /ical/fg-dlt-1.ics HTTP/1.1\nHost: test\n\n", 400),  # bare LF: refused by aiohttp, not left hanging
        (get(FEED, version="1.0"), 200),
        (get(FEED, "Content-Length: 4") + b"abcd", 200),
        (get(FEED, "X-Long: " + "a" * 9000), 400),
    ],
    ids=["unknown-meeting", "unknown-track", "post", "malformed", "bare-lf", "http-1.0", "with-body", "huge-head"],
)
async def test_anything_else_is_answered_by_aiohttp(served: Served, conn: Conn, request_bytes: bytes,
                                                    status: int) -> None:
    reader, writer = conn
    writer.write(request_bytes)
    reply = await read_reply(reader)
    assert reply.status == status
    assert fast_path(served).answered == 0 and fast_path(served).handed_over == 1


async def test_a_head_that_arrives_byte_by_byte_is_still_answered(served: Served, conn: Conn) -> None:
    reader, writer = conn
    for byte in get(FEED):
        writer.write(bytes([byte]))
        await writer.drain()
    assert (await read_reply(reader)).status == 200
    assert fast_path(served).answered == 1


async def test_connection_close_is_honoured(served: Served, conn: Conn) -> None:
    reader, writer = conn
    writer.write(get(FEED, "Connection: close") + get(FEED))
    reply = await read_reply(reader)
    assert reply.status == 200 and reply.headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b"", "the request after Connection: close is not answered"


async def test_idle_connections_are_closed(served: Served) -> None:
    server = FastPathTestServer(create_app(served.snapshots, WebOptions(PUBLIC)), served.snapshots, idle_seconds=0.3)
    client = TestClient(server)
    await client.start_server()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get(FEED))
        assert (await read_reply(reader)).status == 200
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await client.close()


async def test_shutdown_closes_connections_waiting_on_the_fast_path(served: Served, conn: Conn) -> None:
    reader, writer = conn
    writer.write(get(FEED))
    assert (await read_reply(reader)).status == 200
    assert len(fast_path(served).connections) == 1
    await served.client.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""

