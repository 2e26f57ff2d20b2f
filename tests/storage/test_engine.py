from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from floorbridge.adapters.storage import Checkpoints, create_engine, write_here
from floorbridge.adapters.storage.engine import parse_url, run_write, writing
from floorbridge.core.errors import InvalidInput


async def test_sqlite_engine_creates_the_directory_and_sets_pragmas_on_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "fb.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=4321)
    try:
        # Two connections at once, so the pragmas cannot come from one reused connection.
        async with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
                assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 4321
                assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL
    finally:
        await engine.dispose()
    assert path.exists()


def test_plain_driver_names_get_the_async_driver() -> None:
    assert parse_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+asyncpg"


def test_unsupported_database_is_refused_with_the_driver_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        create_engine("mysql+aiomysql://root:secret@localhost/fb")
    (problem,) = caught.value.problems
    assert problem.where == "database url"
    assert "'mysql+aiomysql'" in problem.what
    assert "secret" not in str(caught.value)


@pytest.mark.postgres
async def test_postgres_engine_keeps_the_configured_pool(shared_pg_url: str) -> None:
    engine = create_engine(shared_pg_url, pool_size=2)
    try:
        async with engine.connect() as first, engine.connect() as second, engine.connect() as third:
            for conn in (first, second, third):
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        # Three were open at once (two kept, one overflow); only the configured two are kept.
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
        assert engine.pool.checkedin() == 2  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_sqlite_writers_of_one_process_take_turns_without_the_busy_handler(tmp_path: Path) -> None:
    # With no busy timeout at all, SQLite refuses a second writer at once ("database is locked"):
    # every one of these concurrent transactions succeeds only because they queue in the process.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fb.db'}", busy_timeout_ms=0)
    try:
        async with writing(engine) as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))

        async def write(n: int) -> None:
            async with writing(engine) as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await asyncio.sleep(0.001)  # hold the write lock across a hop of the event loop

        await asyncio.gather(*(write(n) for n in range(40)))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 40
    finally:
        await engine.dispose()


async def test_a_database_error_never_carries_the_values_it_was_given(store_url: str) -> None:
    """A failing statement's message (which ends up in logs) shows the SQL, not the bound values:
    they may be feed tokens or mail."""
    engine = create_engine(store_url)
    try:
        with pytest.raises(Exception) as failed:
            async with writing(engine) as conn:
                await conn.execute(text("INSERT INTO no_such_table (token) VALUES (:token)"),
                                   {"token": "feed-token-s3cret"})
        assert "no_such_table" in str(failed.value)
        assert "feed-token-s3cret" not in str(failed.value)
    finally:
        await engine.dispose()


def _make_table(conn: Connection) -> None:
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")


def _add_note(conn: Connection, body: str) -> int:
    return int(conn.exec_driver_sql("INSERT INTO notes (body) VALUES (?) RETURNING id", (body,)).scalar_one())


async def test_a_quick_write_waits_for_another_processs_lock_without_stopping_the_loop(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock for 0.3 s: a quick write (in the loop's thread)
    waits for it, and the loop keeps turning meanwhile (SQLite's busy handler would block it)."""
    path = tmp_path / "fb.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await run_write(engine, _make_table)
        other = sqlite3.connect(path, isolation_level=None)  # another process's connection
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        write = asyncio.create_task(run_write(engine, _add_note, "waited", quick=True))
        await asyncio.sleep(0.3)
        assert not write.done()
        assert ticks > 20  # the loop went on while the write waited
        other.execute("COMMIT")
        other.close()
        async with asyncio.timeout(5):
            assert await write == 1
        ticker.cancel()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT body FROM notes"))).scalars().all() == ["waited"]
    finally:
        await engine.dispose()


async def test_a_quick_write_gives_up_after_the_busy_timeout_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=200)
    try:
        await run_write(engine, _make_table)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        started = asyncio.get_running_loop().time()
        with pytest.raises(OperationalError, match="database is locked"):
            await run_write(engine, _add_note, "never", quick=True)
        assert 0.2 <= asyncio.get_running_loop().time() - started < 2
        other.execute("ROLLBACK")
        other.close()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar() == 0
    finally:
        await engine.dispose()


async def test_writes_in_the_loops_thread_reach_the_database_file_by_checkpoints(tmp_path: Path) -> None:
    """Connections that write in the loop's thread never copy the write-ahead log into the database
    file on commit (that would stall the loop): Checkpoints does it, in a thread."""
    path = tmp_path / "fb.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await run_write(engine, _make_table)
        async with Checkpoints(engine) as checkpoints:
            await checkpoints.once()
            size = path.stat().st_size
            write_here(engine)  # every run_write from now on, as in the chat worker
            for n in range(300):  # well past SQLite's automatic checkpoint (1,000 pages)
                await run_write(engine, _add_note, f"{n:04d}" + "x" * 20_000)
            assert path.with_name("fb.db-wal").stat().st_size > 4_000_000
            assert path.stat().st_size == size  # nothing copied into the database file on commit
            await checkpoints.once()
            assert path.stat().st_size > size + 4_000_000
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar() == 300
    finally:
        await engine.dispose()
