"""Prepared statements (the list of speakers' commits run them on the driver's cursor): what they
store is what SQLAlchemy would have stored, and a driver's error reaches the caller as SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from floorbridge.adapters.storage import SqlAgendaStore
from floorbridge.adapters.storage.engine import reading, run_write
from floorbridge.adapters.storage.prepared import Prepared
from floorbridge.adapters.storage.tables import queue_audit, speaker_lists

from .conftest import MEETING

GENEVA = timezone(timedelta(hours=2))
AT = datetime(2025, 7, 8, 10, 15, 30, 250000, tzinfo=GENEVA)


def a_list(session: str, version: int = 1) -> dict[str, Any]:
    return {"meeting_id": MEETING.id, "session_id": session, "version": version, "closed": True,
            "seconds_per_speaker": 180, "budgets": {"Côte d'Ivoire": 300}, "waiting": [3, 1, 2],
            "current_id": None, "last_id": 7, "next_id": 8, "updated_at": AT}


KEYS = list(a_list("x"))


def insert_list(conn: Connection) -> Prepared:
    return Prepared.compile(insert(speaker_lists), conn.dialect, KEYS)


async def test_a_row_written_prepared_is_stored_exactly_as_sqlalchemy_stores_it(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)

    def write(conn: Connection) -> None:
        conn.execute(insert(speaker_lists), a_list("by-sqlalchemy"))
        insert_list(conn).execute(conn, a_list("prepared"))

    await run_write(store.engine, write, quick=True)  # as the list of speakers' commits run
    columns = [c for c in speaker_lists.c if c.name not in ("id", "session_id")]
    async with reading(store.engine) as conn:
        rows = {r.session_id: r for r in (await conn.execute(select(speaker_lists))).all()}
        # As stored, before any type's result processing: the same text for the date and the JSON.
        raw = (await conn.exec_driver_sql("SELECT session_id, updated_at, budgets, waiting FROM speaker_lists")).all()
    assert [getattr(rows["prepared"], c.name) for c in columns] == [getattr(rows["by-sqlalchemy"], c.name)
                                                                     for c in columns]
    stored = {r[0]: r[1:] for r in raw}
    assert stored["prepared"] == stored["by-sqlalchemy"]
    assert rows["prepared"].updated_at == AT.astimezone(UTC) and rows["prepared"].waiting == [3, 1, 2]


async def test_a_driver_error_is_sqlalchemys_names_the_statement_and_nothing_of_the_batch_is_kept(
    store: SqlAgendaStore,
) -> None:
    await store.upsert_meeting(MEETING)

    def write(conn: Connection) -> None:
        insert_list(conn).execute_many(conn, [a_list("first"), a_list("twice"), a_list("twice")])

    with pytest.raises(IntegrityError) as caught:
        await run_write(store.engine, write, quick=True)
    assert "INSERT INTO speaker_lists" in str(caught.value)
    async with reading(store.engine) as conn:
        assert (await conn.execute(select(speaker_lists.c.session_id))).all() == []
    # The connection is still good for the next transaction.
    await run_write(store.engine, lambda c: insert_list(c).execute(c, a_list("after")), quick=True)
    async with reading(store.engine) as conn:
        assert (await conn.execute(select(speaker_lists.c.session_id))).scalars().all() == ["after"]


def test_a_missing_value_is_named() -> None:
    prepared = Prepared.compile(insert(queue_audit), sqlite.dialect(), ["list_id", "version"])
    with pytest.raises(ValueError, match="no value for parameter 'version'"):
        prepared.parameters({"list_id": 1})
