"""Run the Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from floorbridge.core.errors import InvalidInput, Problem

from .engine import create_engine, writing

MIGRATIONS = Path(__file__).with_name("migrations")

# Any constant: PostgreSQL serialises concurrent upgraders (several web processes starting at once).
_PG_LOCK = 0x466C6F6F72  # "Floor"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, target)


async def upgrade_engine(engine: AsyncEngine, target: str = "head") -> None:
    """Bring the database behind `engine` to `target`, in one transaction."""
    await check_reachable(engine)
    async with writing(engine) as conn:
        await conn.run_sync(_upgrade, target)


async def check_reachable(engine: AsyncEngine) -> None:
    """InvalidInput naming the database (without its password) and the reason when it cannot be
    opened: a database that was never created, a server that is not there, a file that cannot be
    written. At start this is a mistake in the configuration, not a crash."""
    try:
        async with engine.connect():
            pass
    except (DBAPIError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        where = engine.url.render_as_string(hide_password=True)
        hint = ""
        if "does not exist" in reason and engine.dialect.name == "postgresql":
            hint = f" (create it first, e.g. `createdb {engine.url.database}`, or correct database.url)"
        raise InvalidInput([Problem("database url", f"cannot open {where}: {reason}{hint}")]) from None


async def upgrade(url: str, target: str = "head") -> None:
    engine = create_engine(url)
    try:
        await upgrade_engine(engine, target)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, target: str = "head") -> None:
    """For scripts and CLIs that have no running event loop."""
    asyncio.run(upgrade(url, target))


def current_revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(url: str) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current_revision_of)
    finally:
        await engine.dispose()
