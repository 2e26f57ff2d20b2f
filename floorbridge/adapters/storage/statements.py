"""Helpers the storage modules share: the clock default and an upsert for both dialects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def utc_now() -> datetime:
    return datetime.now(UTC)


async def upsert(conn: AsyncConnection, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT, or UPDATE the non-key columns of the row with the same `keys` (SQLite and PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values)
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys})
    await conn.execute(stmt)
