"""Async engines for the two supported backends: SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from floorbridge.core.errors import InvalidInput, Problem

T = TypeVar("T")

SQLITE = "sqlite+aiosqlite"
POSTGRES = "postgresql+asyncpg"
_DRIVERS = {"sqlite": SQLITE, SQLITE: SQLITE, "postgresql": POSTGRES, "postgres": POSTGRES, POSTGRES: POSTGRES}

# Execution option read by the SQLite "begin" hook: a writer takes the write lock at BEGIN, so it
# waits (busy_timeout) for another writer instead of failing when it upgrades a stale read snapshot.
_WRITE = "floorbridge_write"


def parse_url(url: str) -> URL:
    """`url` with its async driver filled in; InvalidInput for anything but SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput([Problem("database url", f"cannot be parsed: {exc}")]) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise InvalidInput(
            [
                Problem(
                    "database url",
                    f"driver {parsed.drivername!r} is not supported; "
                    "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db",
                )
            ]
        )
    return parsed.set(drivername=driver)


def is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.database or "").startswith("file::memory:")


def create_engine(url: str, *, busy_timeout_ms: int = 10_000, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """An engine for `url`. For SQLite the parent directory is created, the file is put in WAL
    mode and every connection gets synchronous=NORMAL, foreign_keys=ON and busy_timeout; `pool_size` is PostgreSQL's
    number of kept connections (SQLite's pool is the driver's own)."""
    parsed = parse_url(url)
    if parsed.drivername == POSTGRES:
        return create_async_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=pool_size,
                                   hide_parameters=True)
    if not is_memory(parsed):
        path = Path(parsed.database or "").expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        _switch_to_wal(path, busy_timeout_ms)
    engine = create_async_engine(parsed, echo=echo, hide_parameters=True)
    _configure_sqlite(engine.sync_engine, busy_timeout_ms)
    if not is_memory(parsed):
        # The same file through the plain driver, for whole transactions run in a thread (run_write).
        twin = create_sync_engine(parsed.set(drivername="sqlite"), echo=echo, hide_parameters=True)
        _configure_sqlite(twin, busy_timeout_ms)
        _twins[engine.sync_engine] = twin
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: twin.dispose())
    return engine


def _switch_to_wal(path: Path, busy_timeout_ms: int) -> None:
    """Put the database file in WAL mode once, before any pooled connection opens it.

    WAL is a property of the file, so one switch lasts. The switch needs an exclusive lock and
    SQLite answers "database is locked" at once, without its busy handler, when another
    connection holds the file (seen with several processes migrating a new file), so the
    switch is retried here until the busy timeout."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.005
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=busy_timeout_ms / 1000)) as conn:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise InvalidInput([Problem("database url", f"{path} cannot be put in WAL mode (it stays {mode})")])
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise InvalidInput([Problem("database url", f"{path} cannot be opened: {exc}")]) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is switched off; the "begin" hook below emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# SQLite has one writer at a time. Writers of this process queue here, in order, rather than in
# SQLite's busy handler, which sleeps in growing steps (up to 100 ms) however soon the lock is
# free: under a burst that made a 5 ms commit wait hundreds of milliseconds. Other processes still
# meet in the busy handler.
_sqlite_writers: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())
_twins: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    locks = _sqlite_writers.setdefault(engine.sync_engine, {})
    loop = asyncio.get_running_loop()
    lock = locks.get(loop)
    if lock is None:
        for closed in [x for x in locks if x.is_closed()]:
            del locks[closed]
        lock = locks[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a write transaction: committed on success, rolled back on any exception.
    Not to be nested: on SQLite the second writer would wait for the first forever."""
    lock = _writer_lock(engine)
    if lock is None:
        async with engine.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn
        return
    async with lock, engine.connect() as conn:
        await conn.execution_options(**{_WRITE: True})
        async with conn.begin():
            yield conn


def sqlite_twin(engine: AsyncEngine) -> Engine | None:
    """The plain-driver engine on the same SQLite file that run_write uses (None on PostgreSQL)."""
    return _twins.get(engine.sync_engine)


async def run_write(engine: AsyncEngine, work: Callable[..., T], *args: Any) -> T:
    """`work(connection, *args)` in one write transaction, with SQLAlchemy's plain (sync) API.

    On SQLite the whole transaction runs in a worker thread and comes back once. Through the async
    driver every statement makes several trips between the event loop and the driver's thread
    (cursor, execute, fetch, close), each waiting for a turn of a busy loop: under a burst that
    made a 5 ms commit take 30 ms and more. On PostgreSQL it runs through the async driver."""
    twin = sqlite_twin(engine)
    lock = _writer_lock(engine)
    if twin is None or lock is None:
        async with writing(engine) as conn:
            return await conn.run_sync(work, *args)
    async with lock:
        return await asyncio.to_thread(_write_in, twin, work, args)


def _write_in(engine: Engine, work: Callable[..., T], args: tuple[Any, ...]) -> T:
    with engine.connect() as conn:
        conn = conn.execution_options(**{_WRITE: True})
        with conn.begin():
            return work(conn, *args)


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a read transaction, so several queries see one snapshot."""
    async with engine.connect() as conn, conn.begin():
        yield conn


# asyncpg's errors for a server that is going away or not there (SQLSTATE classes 08 and 57P).
_GONE_SQLSTATES = ("08", "57P")
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT,
                   errno.EPIPE, errno.ECONNABORTED}


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (the server restarting, the network
    gone, a connection cut), as opposed to a mistake in a statement: worth a retry, not a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        if isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS:
            return True  # connect() refused, unreachable network
        state = getattr(current, "sqlstate", None)  # asyncpg's errors carry it
        if isinstance(state, str) and state.startswith(_GONE_SQLSTATES):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False
