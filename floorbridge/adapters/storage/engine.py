"""Async engines for the two supported backends: SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.tasks import cancel_and_wait

T = TypeVar("T")
log = logging.getLogger("floorbridge.storage")

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
        # The same file through the plain driver, for whole transactions in one go (run_write): in a
        # thread, waiting for the write lock in SQLite's busy handler; or in the loop's thread, with
        # connections that never wait inside SQLite (the caller waits, without blocking the loop)
        # nor checkpoint on commit (a Checkpoints task does it, in a thread).
        pooled = create_sync_engine(parsed.set(drivername="sqlite"), echo=echo, hide_parameters=True)
        _configure_sqlite(pooled, busy_timeout_ms)
        here = create_sync_engine(parsed.set(drivername="sqlite"), echo=echo, hide_parameters=True)
        _configure_sqlite(here, 0, checkpoint_on_commit=False)
        twins = _Twins(pooled, here, busy_timeout_ms / 1000)
        _twins[engine.sync_engine] = twins

        def dispose(_engine: Any) -> None:
            pooled.dispose()
            here.dispose()

        event.listen(engine.sync_engine, "engine_disposed", dispose)
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


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, *, checkpoint_on_commit: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is switched off; the "begin" hook below emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not checkpoint_on_commit:
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
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


@dataclass(frozen=True)
class _Twins:
    pooled: Engine  # for transactions in a thread: waits for the write lock in SQLite's busy handler
    here: Engine  # for transactions in the loop's thread: never waits inside SQLite, never checkpoints
    busy_seconds: float


_twins: weakref.WeakKeyDictionary[Engine, _Twins] = weakref.WeakKeyDictionary()
_all_here: weakref.WeakSet[Engine] = weakref.WeakSet()
_written_here: weakref.WeakSet[Engine] = weakref.WeakSet()  # since the last checkpoint


def write_here(engine: AsyncEngine) -> None:
    """From now on every run_write on this SQLite engine runs in the event loop's own thread, as
    `quick` ones do: for a process whose loop may wait a little (the chat worker), and whose
    transactions would otherwise hold SQLite's write lock far longer than their work takes.

    SQLite has one writer at a time across processes. Run in a thread of a busy process, every
    statement of a transaction waits for the interpreter lock that the busy loop holds (up to the
    5 ms switch interval each time), and the write lock is held all that while: the chat worker's
    2 ms transactions held it 20-50 ms under a burst of chat traffic, while the web process's
    commits, and the web delegates' acknowledgements behind them, waited (see bench/queue.py)."""
    if engine.dialect.name == "sqlite":
        _all_here.add(engine.sync_engine)


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


def write_engines(engine: AsyncEngine) -> tuple[Engine, ...]:
    """The plain-driver engines on the same SQLite file that run_write uses (in a thread, in the
    loop's thread); none on PostgreSQL and for an in-memory database."""
    twins = _twins.get(engine.sync_engine)
    return (twins.pooled, twins.here) if twins is not None else ()


async def run_write(engine: AsyncEngine, work: Callable[..., T], *args: Any, quick: bool = False) -> T:
    """`work(connection, *args)` in one write transaction, with SQLAlchemy's plain (sync) API.
    `work` touches nothing but the connection: it may be run again after a rollback.

    On SQLite the whole transaction runs in one go, never spread over turns of the event loop:
    through the async driver every statement makes several trips between the loop and the
    driver's thread, each waiting for a turn of a busy loop (under a burst a 5 ms commit took 30 ms
    and more). By default it runs in a thread. A `quick` one (a small transaction, bounded in size,
    on the path of an answer someone waits for: a list of speakers' commit), and every one after
    write_here, runs in the loop's own thread: run in a thread, its result waits for the busy loop
    to notice it (up to 100 ms seen in a burst), and while it waits for SQLite's write lock the
    loop goes on (see _write_here). On PostgreSQL it runs through the async driver."""
    twins = _twins.get(engine.sync_engine)
    lock = _writer_lock(engine)
    if twins is None or lock is None:
        async with writing(engine) as conn:
            return await conn.run_sync(work, *args)
    async with lock:
        if quick or engine.sync_engine in _all_here:
            return await _write_here(engine.sync_engine, twins, work, args)
        return await asyncio.to_thread(_write_in, twins.pooled, work, args)


async def _write_here(key: Engine, twins: _Twins, work: Callable[..., T], args: tuple[Any, ...]) -> T:
    """The transaction in this thread. Its connections never wait inside SQLite: when another
    process holds the write lock, BEGIN fails at once and the attempt is made again after a pause
    (0.5 ms, doubling to 5 ms) while the loop goes on, until the busy timeout. SQLite's own busy
    handler would block the loop, in steps of up to 100 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + twins.busy_seconds
    pause = 0.0005
    while True:
        try:
            result = _write_in(twins.here, work, args)
        except OperationalError as exc:
            if not _locked(exc) or loop.time() >= deadline:
                raise
        else:
            _written_here.add(key)
            return result
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.005)


def _locked(exc: OperationalError) -> bool:
    return isinstance(exc.orig, sqlite3.OperationalError) and exc.orig.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Checkpoints:
    """Copies the write-ahead log of an SQLite database into the database file every `seconds`,
    in a thread, when this process wrote in its loop's thread since (those connections do not
    checkpoint on commit, which would stall the loop for as long as the copy and its fsync take).
    A no-op on PostgreSQL and for an in-memory database."""

    def __init__(self, engine: AsyncEngine, seconds: float = 1.0) -> None:
        self._key = engine.sync_engine
        self._twins = _twins.get(engine.sync_engine)
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Checkpoints:
        if self._twins is not None:
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpoints")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._key in _written_here:
            await self.once()

    async def once(self) -> None:
        if self._twins is None:
            return
        _written_here.discard(self._key)
        await asyncio.to_thread(_checkpoint, self._twins.pooled)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._seconds)
            if self._key in _written_here:
                try:
                    await self.once()
                except Exception:
                    log.warning("an SQLite checkpoint failed; the next one will try again", exc_info=True)


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


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
