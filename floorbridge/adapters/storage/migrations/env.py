"""Alembic environment. floorbridge.adapters.storage.migrate hands over a connection taken from the
async engine (via AsyncConnection.run_sync); the alembic CLI path builds the async engine itself."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from floorbridge.adapters.storage.engine import create_engine
from floorbridge.adapters.storage.tables import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_with)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    run_with(given)
else:
    url = config.get_main_option("sqlalchemy.url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database url: pass -x url=sqlite+aiosqlite:///path or set sqlalchemy.url")
    if context.is_offline_mode():
        run_offline(url)
    else:
        asyncio.run(run_async(url))
