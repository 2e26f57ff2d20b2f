"""A fast path for iCal feed requests, in front of the aiohttp application on the same port.

Calendar clients poll feeds all day, most often with a conditional GET answered 304. Going
through aiohttp's request objects, router, middleware and response machinery costs far more
than the answer itself, which is prepared once per published version (snapshot.ServedFeed).
So each connection starts with this protocol: while the requests on it are well-formed
HTTP/1.1 GET or HEAD requests without a body for a feed that exists, it answers them straight
from the snapshot. At the first request that is anything else (another path, another method,
a body, an unknown meeting, a malformed or oversized head, HTTP/1.0) it hands the connection,
from the start of that request, to aiohttp's own protocol, which answers it and every later
request on the connection exactly as if it had owned the connection from the start.

Request heads are parsed by httptools (llhttp, the parser uvicorn uses), so what is accepted
is strict HTTP/1.1; anything llhttp refuses goes to aiohttp, which answers 400.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import formatdate

import httptools
from aiohttp import web

from floorbridge.core.ids import MeetingId

from .snapshot import ServedFeed, Snapshots

# aiohttp's own limit for a request line plus headers is 8190 bytes per line; a feed request
# head is a few hundred bytes. Anything longer is left to aiohttp to refuse properly.
MAX_HEAD = 8192
IDLE_SECONDS = 75.0  # aiohttp's keep-alive timeout

_FEED = re.compile(rb"^/ical/([a-z0-9-]+)(?:\.ics|/(deadlines)\.ics|/tracks/([a-z0-9-]+)\.ics)$")
_PREFIXES = (b"GET /ical/", b"HEAD /ical/")
_WANTED = {b"if-none-match", b"if-modified-since", b"accept-encoding"}
# Request headers that mean the request is not a plain bodiless GET the fast path may answer.
_NOT_OURS = {b"content-length", b"transfer-encoding", b"upgrade", b"expect"}

access_log = logging.getLogger("floorbridge.access")


class _DateHeader:
    """The Date header (RFC 9110 6.6.1), formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


class FastPath:
    """Shared state of every fast-path connection of one listener."""

    def __init__(self, snapshots: Snapshots, aiohttp_server: web.Server, idle_seconds: float = IDLE_SECONDS) -> None:
        self.snapshots = snapshots
        self.aiohttp_server = aiohttp_server
        self.idle_seconds = idle_seconds
        self.connections: set[FeedProtocol] = set()
        self.date = _DateHeader()
        self.answered = 0
        self.not_modified = 0  # of those answered, 304s
        self.handed_over = 0

    def protocol(self) -> FeedProtocol:
        return FeedProtocol(self)

    def lookup(self, path: bytes) -> ServedFeed | None:
        m = _FEED.match(path)
        if m is None:
            return None
        snap = self.snapshots.meetings.get(MeetingId(m.group(1).decode("ascii")))
        if snap is None:
            return None
        if m.group(2):
            key = "deadlines"
        elif m.group(3):
            key = "tracks/" + m.group(3).decode("ascii")
        else:
            key = "all"
        return snap.feeds.get(key)

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()


class FeedProtocol(asyncio.Protocol):
    """One connection, while it is on the fast path (see the module docstring)."""

    def __init__(self, fast: FastPath) -> None:
        self._fast = fast
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._ours = True
        self._complete = False
        self._keep_alive = True
        self._paused = False
        self._last_active = 0.0
        self._idle: asyncio.TimerHandle | None = None
        self._remote = ""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._fast.connections.add(self)
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        loop = asyncio.get_running_loop()
        self._last_active = loop.time()
        self._idle = loop.call_at(self._last_active + self._fast.idle_seconds, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def pause_writing(self) -> None:
        # A client that pipelines faster than it reads: stop reading until it catches up.
        if self._transport is not None and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and self._paused:
            self._paused = False
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._last_active = asyncio.get_running_loop().time()
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        close = False
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                # Not a whole head yet: wait, unless it already cannot be a feed request.
                if len(buffer) > MAX_HEAD or not _could_be_feed_request(buffer) or _bare_lf(buffer):
                    self._hand_over(out, buffer)
                    return
                break
            head = buffer[: end + 4]
            if end + 4 > MAX_HEAD or not head.startswith(_PREFIXES):
                self._hand_over(out, buffer)
                return
            answer = self._answer(head)
            if answer is None:
                self._hand_over(out, buffer)
                return
            out.extend(answer)
            buffer = buffer[end + 4 :]
            if not self._keep_alive:
                close = True
                break
        self._buffer = b"" if close else buffer
        if out:
            transport.writelines(out)
        if close:
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # close the connection; answers already written are flushed first

    # the fast path

    def _answer(self, head: bytes) -> list[bytes] | None:
        """The response to one request head, or None when aiohttp must answer it."""
        self._url, self._headers, self._ours, self._complete, self._keep_alive = b"", {}, True, False, True
        try:
            self._parser.feed_data(head)
        except httptools.HttpParserError:
            return None
        if not (self._ours and self._complete) or self._parser.get_http_version() != "1.1":
            return None
        method = self._parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return None
        path = self._url.partition(b"?")[0]
        served = self._fast.lookup(path)
        if served is None:
            return None
        h = self._headers
        variant = served.answer(
            _text(h.get(b"if-none-match")), _text(h.get(b"if-modified-since")), _text(h.get(b"accept-encoding"))
        )
        parts = [variant.head, self._fast.date.line()]
        if not self._keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        if method == b"GET" and variant.body:
            parts.append(variant.body)
        self._fast.answered += 1
        if variant.status == 304:
            self._fast.not_modified += 1
        if access_log.isEnabledFor(logging.INFO):
            size = len(variant.body) if method == b"GET" else 0
            access_log.info(
                '%s "%s %s HTTP/1.1" %d %d',
                self._remote, method.decode(), self._url.decode("latin-1"), variant.status, size,
                extra={"remote": self._remote, "method": method.decode(), "path": path.decode("latin-1"),
                       "status": variant.status, "bytes": size, "fast_path": True},
            )
        return parts

    def _hand_over(self, answered: list[bytes], rest: bytes) -> None:
        """Give the connection to aiohttp, starting with the request at the start of `rest`."""
        transport = self._transport
        assert transport is not None
        if answered:
            transport.writelines(answered)
        self._forget()
        self._fast.handed_over += 1
        if self._paused:
            self._paused = False
            transport.resume_reading()
        handler = self._fast.aiohttp_server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if rest:
            handler.data_received(rest)

    def _forget(self) -> None:
        self._fast.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _check_idle(self) -> None:
        self._idle = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        due = self._last_active + self._fast.idle_seconds
        if loop.time() >= due:
            transport.close()
            self._forget()
        else:
            self._idle = loop.call_at(due, self._check_idle)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._forget()

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key in _NOT_OURS:
            self._ours = False
        elif key in _WANTED:
            old = self._headers.get(key)
            self._headers[key] = value if old is None else old + b", " + value

    def on_headers_complete(self) -> None:
        # Read here: once the message is complete, llhttp resets its state for the next one.
        self._keep_alive = bool(self._parser.should_keep_alive())

    def on_message_complete(self) -> None:
        self._complete = True


def _could_be_feed_request(partial: bytes) -> bool:
    """Whether an incomplete head may still turn out to be a GET or HEAD of /ical/..."""
    return any(p.startswith(partial[: len(p)]) for p in _PREFIXES)


def _bare_lf(partial: bytes) -> bool:
    """Lines ended by LF alone: never a head this path answers (and "\r\n\r\n" may never come)."""
    return partial.count(b"\n") != partial.count(b"\r\n")


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


class FastPathSite(web.BaseSite):
    """A TCP site whose connections start on the feed fast path (aiohttp's TCPSite otherwise)."""

    __slots__ = ("_fast", "_host", "_idle_seconds", "_port", "_reuse_port", "_snapshots")

    def __init__(
        self,
        runner: web.BaseRunner,
        snapshots: Snapshots,
        host: str,
        port: int,
        *,
        reuse_port: bool = True,
        idle_seconds: float = IDLE_SECONDS,
        backlog: int = 4096,
    ) -> None:
        # aiohttp's default backlog of 128 overflows when a thousand delegates ask for the floor in
        # the same second: the kernel drops their SYNs and clients retry only after a second.
        super().__init__(runner, backlog=backlog)
        self._snapshots = snapshots
        self._idle_seconds = idle_seconds
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._fast: FastPath | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        server = self._server
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port

    @property
    def fast_path(self) -> FastPath:
        assert self._fast is not None, "the site is not started"
        return self._fast

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert isinstance(server, web.Server)
        self._fast = FastPath(self._snapshots, server, self._idle_seconds)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._fast.protocol, self._host, self._port, backlog=self._backlog, reuse_port=self._reuse_port
        )

    async def stop(self) -> None:
        await super().stop()
        # Connections still on the fast path are idle between requests (each answer is written
        # in one go): closing them flushes what is written and drops nothing in flight.
        if self._fast is not None:
            self._fast.close_all()
