from __future__ import annotations

import asyncio
import hashlib
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from floorbridge.adapters.storage import (
    SchemaOutOfDate,
    SqlChatStore,
    create_engine,
    current_revision,
    head_revision,
    open_store,
    upgrade,
    upgrade_sync,
)
from floorbridge.adapters.storage.tables import metadata
from floorbridge.core.chats import ChatProfile, ChatRef, Platform

from .conftest import MEETING, TABLES

pytestmark = pytest.mark.usefixtures("backend")


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_on_an_empty_database_creates_every_table(empty_url: str) -> None:
    assert await current_revision(empty_url) is None
    await upgrade(empty_url)
    assert await current_revision(empty_url) == head_revision()
    assert await table_names(empty_url) == {*TABLES, "alembic_version"}


async def test_upgrading_twice_is_a_no_op_and_keeps_the_data(empty_url: str) -> None:
    async with await open_store(empty_url) as store:
        await store.upsert_meeting(MEETING)
    await upgrade(empty_url)
    async with await open_store(empty_url) as store:
        assert await store.get_meeting(MEETING.id) == MEETING
    assert await current_revision(empty_url) == head_revision()


def test_the_sync_helper_migrates_without_a_running_loop(empty_url: str) -> None:
    upgrade_sync(empty_url)
    assert asyncio.run(current_revision(empty_url)) == head_revision()


async def test_concurrent_upgrades_of_one_database_both_succeed(empty_url: str) -> None:
    # Several web processes starting at once must not trip over each other's CREATE TABLE.
    await asyncio.gather(upgrade(empty_url), upgrade(empty_url), upgrade(empty_url))
    assert await current_revision(empty_url) == head_revision()


async def test_several_processes_migrating_one_new_database_all_succeed(empty_url: str) -> None:
    # `make run` in two terminals, or several workers started together on a database not yet created.
    script = "import sys; from floorbridge.adapters.storage import upgrade_sync; upgrade_sync(sys.argv[1])"
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, empty_url, stderr=asyncio.subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [(await proc.communicate())[1].decode()[-2000:] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], errors
    assert await current_revision(empty_url) == head_revision()


def _schema_differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_the_hand_written_migration_matches_the_table_definitions(empty_url: str) -> None:
    await upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema_differences) == []
    finally:
        await engine.dispose()


async def test_opening_without_migrating_refuses_an_unmigrated_database(empty_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match=r"revision None.*run the migrations"):
        await open_store(empty_url, migrate=False)
    await upgrade(empty_url)
    async with await open_store(empty_url, migrate=False) as store:
        assert await store.list_meetings() == []


async def test_foreign_keys_are_enforced(empty_url: str) -> None:
    async with await open_store(empty_url) as store, store.engine.connect() as conn:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await conn.execute(
                text("INSERT INTO working_copy_meta (meeting_id, updated_at) VALUES ('nope', CURRENT_TIMESTAMP)")
            )


async def test_feed_tokens_issued_before_0005_still_open_their_feeds(empty_url: str) -> None:
    """0005 looks feeds up by the token's SHA-256: it fills that in for the tokens already issued."""
    await upgrade(empty_url, "0004")
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO chats (platform, chat_id, is_group, language, timezone, feed_token, started, updated_at)"
                " VALUES ('telegram', '42', false, 'fr', 'Europe/Paris', 'old-token-issued-in-0004', true,"
                " CURRENT_TIMESTAMP)"))
    finally:
        await engine.dispose()
    async with await open_store(empty_url) as store:  # migrates to the head
        chats = SqlChatStore(store.engine)
        found = await chats.profile_by_feed_token("old-token-issued-in-0004")
        assert found is not None and found.chat == ChatRef(Platform.TELEGRAM, "42") and found.language == "fr"
        assert await chats.profile_by_feed_token("old-token-issued-in-0004x") is None
        await chats.save_profile(ChatProfile(ChatRef(Platform.TELEGRAM, "43"), feed_token="new-token"))
        assert (await chats.profile_by_feed_token("new-token")) is not None
        async with store.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT feed_token_hash FROM chats WHERE chat_id = '43'"))).scalar()
        assert stored == hashlib.sha256(b"new-token").hexdigest()
