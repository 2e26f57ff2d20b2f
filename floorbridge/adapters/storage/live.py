"""Live events between floorbridge processes sharing one PostgreSQL database: LISTEN/NOTIFY.

Writers add `pg_notify` to the transaction that makes the change (`notify_in`), so the event is
sent when, and only if, it commits. Two channels: a list of speakers moved to a new version
("meeting/session/version"), and outbox rows were added ("platform,…"). Each process listens on
one dedicated asyncpg connection and hands the events to its floor service (which reloads the
list and wakes its live pages) and its delivery engine (which looks at the outbox at once instead
of at its next poll). The connection is re-opened when it drops; a missed event only delays a
change until the next poll or the next conflict, it never loses one.

On SQLite there is one process (several are refused at start), and nothing to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from floorbridge.core.tasks import cancel_and_wait

log = logging.getLogger("floorbridge.live")

FLOOR = "floorbridge_floor"
OUTBOX = "floorbridge_outbox"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_HEALTH_SECONDS = 5.0
_MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8,000 bytes


def notify_in(conn: Connection, channel: str, payload: str) -> None:
    """Queue an event in the caller's transaction (PostgreSQL only; a no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": channel, "payload": payload[:_MAX_PAYLOAD]})


def outbox_payload(platforms: Iterable[str]) -> str:
    return ",".join(sorted(set(platforms)))


class LiveEvents:
    """One process's listener. `on_floor(meeting, session, version)`, `on_outbox(platforms)`, and
    `on_listening()` each time it listens again after a gap (what was notified meanwhile is lost)."""

    def __init__(self, database_url: str, *, on_floor: Callable[[str, str, int], None],
                 on_outbox: Callable[[list[str]], None], on_listening: Callable[[], None] = lambda: None,
                 retry_seconds: float = 1.0) -> None:
        url = make_url(database_url)
        self._enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_floor = on_floor
        self._on_outbox = on_outbox
        self._on_listening = on_listening
        self._listened = False
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.received = 0

    async def start(self, *, wait: float = 10.0) -> None:
        if not self._enabled:
            return
        self._task = asyncio.create_task(self._run(), name="live-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(FLOOR, self._floor)
                await conn.add_listener(OUTBOX, self._outbox)
                self._connected.set()
                if self._listened:
                    self._on_listening()
                self._listened = True
                while not lost.is_set():
                    # A connection that died quietly (server restarted, network gone) shows on use.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), _HEALTH_SECONDS)
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=_HEALTH_SECONDS)
                log.warning("live events: the listening connection was lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live events: cannot listen (%s); retrying", type(exc).__name__)
            finally:
                self._connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            # Changes made while not listening are seen at the next poll or conflict; wake anyway.
            self._on_outbox([])
            await asyncio.sleep(self._retry)

    def _floor(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        meeting, _, rest = payload.partition("/")
        session, _, version = rest.rpartition("/")
        if meeting and session and version.isdigit():
            self._on_floor(meeting, session, int(version))

    def _outbox(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        self._on_outbox([p for p in payload.split(",") if p])
