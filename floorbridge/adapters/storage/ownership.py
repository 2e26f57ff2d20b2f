"""Each chat platform's connection belongs to one process at a time: a PostgreSQL advisory lock.

A worker process asks for the lock of every enabled platform on a connection of its own and
runs that platform's bot and delivery only while it holds it; the others keep asking every
`retry_seconds`. The lock lives as long as its connection: when the owner dies (kill -9, a lost
machine) PostgreSQL ends its session and another process gets the lock at its next try, and
starts the platform `settle_seconds` later.

An owner whose lock connection breaks (the server restarted, the network went away, its session
was terminated) can no longer be sure it is the only sender. It stops that platform at once, its
bot and its delivery (`on_lost`, awaited: sends in flight finish, nothing new starts), and goes
back to asking for the lock as a standby, on a new connection; once it holds the lock again the
platform starts again (`on_acquired`). The process itself keeps running, and so do its other
platforms if their connections are fine. The loss is seen at once when the server closes the
connection (a restart, pg_terminate_backend) and within `2 * health_seconds` when the connection
dies quietly (checked with a round trip).

On SQLite there is one process and nothing to lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from floorbridge.core.tasks import cancel_and_wait

log = logging.getLogger("floorbridge.ownership")

_HEALTH_SECONDS = 2.0
_CONNECT_SECONDS = 10.0
_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
# A lock just won may have been freed by the end of another process's session a moment ago: that
# process hears of it at the same moment (its connection closes), and stops taking new sends.
# The new owner starts this much later, so the two do not run side by side meanwhile.
_SETTLE_SECONDS = 0.5
# Processes share the platforms rather than the first to start taking them all: the i-th platform
# is first asked for i spreads after start, and a process that already runs some asks that many
# spreads later than one that runs none.
_SPREAD_SECONDS = 0.5


def lock_key(platform: str) -> int:
    """A stable 32-bit key per platform (advisory locks take a bigint)."""
    return zlib.crc32(f"floorbridge:platform:{platform}".encode())


class PlatformLocks:
    """`on_acquired(platform)` once the lock is held (again); `on_lost(platform)` once it may not be."""

    def __init__(self, database_url: str, platforms: Iterable[str], *,
                 on_acquired: Callable[[str], Awaitable[None]], on_lost: Callable[[str], Awaitable[None]],
                 retry_seconds: float = 1.0, health_seconds: float = _HEALTH_SECONDS,
                 settle_seconds: float = _SETTLE_SECONDS, spread_seconds: float = _SPREAD_SECONDS) -> None:
        url = make_url(database_url)
        self.enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._platforms = list(platforms)
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._retry = retry_seconds
        self._health = health_seconds
        self._settle = settle_seconds
        self._spread = spread_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self.owned: set[str] = set()  # the locks held
        self._running: set[str] = set()  # told to run (on_acquired), not yet told to stop
        # How many times each platform's lock was taken by this process, and lost (for logs and tests).
        self.acquired: dict[str, int] = dict.fromkeys(self._platforms, 0)
        self.lost: dict[str, int] = dict.fromkeys(self._platforms, 0)

    async def start(self) -> None:
        for platform in self._platforms:
            if not self.enabled:
                self.owned.add(platform)
                self.acquired[platform] += 1
                await self._on_acquired(platform)
            else:
                self._tasks.append(asyncio.create_task(self._hold(platform), name=f"own-{platform}"))

    async def stop(self) -> None:
        """Stop asking and holding (the connections close, so the locks go to a standby). The
        platforms themselves are the caller's to stop."""
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        self.owned.clear()
        self._running.clear()

    async def _ask(self, conn: Any, key: int, platform: str) -> None:
        """Until this process holds the platform's lock."""
        await asyncio.sleep(self._platforms.index(platform) * self._spread)
        while True:
            others = len(self.owned - {platform})
            if others:
                await asyncio.sleep(others * self._spread)
            if await conn.fetchval(_TRY_LOCK, key, timeout=self._health):
                return
            await asyncio.sleep(self._retry)

    async def _hold(self, platform: str) -> None:
        key = lock_key(platform)
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_SECONDS)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn, closed=closed: closed.set())
                await self._ask(conn, key, platform)
                self.owned.add(platform)
                self.acquired[platform] += 1
                # The platform starts while the connection is watched: a loss during a slow start
                # (a gateway that takes its time) stops it as soon as it is seen.
                starting = asyncio.create_task(self._start(platform), name=f"start-{platform}")
                try:
                    await self._watch(conn, closed)
                finally:
                    starting.cancel()
                    await asyncio.wait([starting])  # (a cancel of this task still comes through)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                was_owner = platform in self.owned
                if was_owner:
                    self.owned.discard(platform)
                    self.lost[platform] += 1
                if platform in self._running:
                    self._running.discard(platform)
                    log.error("lost the platform's lock (%s): stopping it so that only one process sends, "
                              "then asking for the lock again", type(exc).__name__, extra={"platform": platform})
                    try:
                        # Shielded: a stop of the whole process meanwhile waits for it, not half of it.
                        await asyncio.shield(self._on_lost(platform))
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("the platform failed to stop cleanly", extra={"platform": platform})
                elif was_owner:
                    log.warning("lost the platform's lock (%s) before starting it; asking again",
                                type(exc).__name__, extra={"platform": platform})
                else:
                    log.warning("cannot ask for the platform's lock (%s); retrying", type(exc).__name__,
                                extra={"platform": platform})
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(self._retry)

    async def _start(self, platform: str) -> None:
        await asyncio.sleep(self._settle)
        self._running.add(platform)
        log.info("this process now runs the platform", extra={"platform": platform})
        try:
            await self._on_acquired(platform)
        except Exception:  # the lock stays here: the platform's messages wait in the outbox
            log.exception("the platform failed to start", extra={"platform": platform})

    async def _watch(self, conn: Any, closed: asyncio.Event) -> None:
        """Return only by raising: when the server closes the connection, or a round trip fails."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), self._health)
            if closed.is_set() or conn.is_closed():
                raise ConnectionError("the lock's connection was closed")
            await conn.fetchval("SELECT 1", timeout=self._health)
