"""Each chat platform's connection belongs to one process at a time: a PostgreSQL advisory lock.

A worker process asks for the lock of every enabled platform on a connection of its own and
runs that platform's bot and delivery only once it holds it; the others keep asking every
`retry_seconds`. The lock lives as long as its connection: when the owner dies (kill -9, a lost
machine) PostgreSQL ends its session and another process gets the lock at its next try. An owner
whose connection breaks can no longer be sure it is the only sender, so it is told (`on_lost`)
and stops; its supervisor (Docker, systemd) starts it again, as a standby.

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

log = logging.getLogger("floorbridge.ownership")

_HEALTH_SECONDS = 2.0


def lock_key(platform: str) -> int:
    """A stable 32-bit key per platform (advisory locks take a bigint)."""
    return zlib.crc32(f"floorbridge:platform:{platform}".encode())


class PlatformLocks:
    def __init__(self, database_url: str, platforms: Iterable[str], *,
                 on_acquired: Callable[[str], Awaitable[None]], on_lost: Callable[[str], None],
                 retry_seconds: float = 1.0) -> None:
        url = make_url(database_url)
        self.enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._platforms = list(platforms)
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._retry = retry_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self.owned: set[str] = set()

    async def start(self) -> None:
        for platform in self._platforms:
            if not self.enabled:
                self.owned.add(platform)
                await self._on_acquired(platform)
            else:
                self._tasks.append(asyncio.create_task(self._hold(platform), name=f"own-{platform}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _hold(self, platform: str) -> None:
        key = lock_key(platform)
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn)
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):  # noqa: ASYNC110 (held by another session)
                    await asyncio.sleep(self._retry)
                self.owned.add(platform)
                log.info("this process now runs the platform", extra={"platform": platform})
                try:
                    await self._on_acquired(platform)
                except Exception:  # the lock stays here: the platform's messages wait in the outbox
                    log.exception("the platform failed to start", extra={"platform": platform})
                while True:
                    await asyncio.sleep(_HEALTH_SECONDS)
                    await conn.fetchval("SELECT 1", timeout=_HEALTH_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if platform in self.owned:
                    self.owned.discard(platform)
                    log.error("lost the platform's lock (%s): stopping so that only one process sends",
                              type(exc).__name__, extra={"platform": platform})
                    self._on_lost(platform)
                    return
                log.warning("cannot ask for the platform's lock (%s); retrying", type(exc).__name__,
                            extra={"platform": platform})
                await asyncio.sleep(self._retry)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
