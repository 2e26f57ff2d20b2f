"""SqlConsoleStore on SQLite and PostgreSQL: accounts and sessions come back equal, an expired
session is gone, and a login link gives its subject exactly once, even to racing processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from floorbridge.adapters.storage import SqlAgendaStore, SqlConsoleStore, create_engine
from floorbridge.core.chats import Role
from floorbridge.core.console import ConsoleAccount, ConsoleSession
from floorbridge.core.ids import MeetingId
from floorbridge.core.ports import ConsoleStore

from .conftest import in_utc

GENEVA = timezone(timedelta(hours=2))
NOW = datetime(2025, 10, 6, 8, 45, 12, 345678, tzinfo=GENEVA)
HASH = "9f" * 32  # a hex SHA-256, as the web adapter stores tokens
ACCOUNT = ConsoleAccount(
    "secretariat.wsis",
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    "WSIS Secretariat — Geneva",
    {MeetingId("wsis-20"): Role.SECRETARIAT, MeetingId("fg-ai4h-12"): Role.MODERATOR},
)


@pytest.fixture
def console(store: SqlAgendaStore) -> SqlConsoleStore:
    s = SqlConsoleStore(store.engine)
    as_port: ConsoleStore = s  # mypy checks SqlConsoleStore against the Protocol here
    assert as_port is s
    return s


async def test_an_account_comes_back_equal_and_can_be_replaced(console: SqlConsoleStore) -> None:
    assert await console.account(ACCOUNT.username) is None
    await console.save_account(ACCOUNT)
    assert await console.account(ACCOUNT.username) == ACCOUNT
    demoted = ConsoleAccount(ACCOUNT.username, "$argon2id$new", "", {MeetingId("wsis-20"): Role.MODERATOR})
    await console.save_account(demoted)
    assert await console.account(ACCOUNT.username) == demoted
    await console.save_account(ConsoleAccount("nobody-yet", "$argon2id$x"))
    assert await console.account("nobody-yet") == ConsoleAccount("nobody-yet", "$argon2id$x", "", {})


async def test_a_session_lives_until_it_expires(console: SqlConsoleStore) -> None:
    session = ConsoleSession("account:secretariat.wsis", "csrf-token-abc", NOW, NOW + timedelta(hours=8))
    await console.create_session(HASH, session)
    loaded = await console.session(HASH, NOW)
    assert loaded == session
    assert loaded is not None and in_utc(loaded.created_at) and in_utc(loaded.expires_at)
    assert await console.session(HASH, NOW + timedelta(hours=8) - timedelta(microseconds=1)) == session
    assert await console.session(HASH, NOW + timedelta(hours=8)) is None
    assert await console.session(HASH, NOW + timedelta(days=2)) is None
    assert await console.session("00" * 32, NOW) is None


async def test_a_deleted_session_is_gone_and_others_stay(console: SqlConsoleStore) -> None:
    mine = ConsoleSession("telegram:42", "c1", NOW, NOW + timedelta(hours=1))
    theirs = ConsoleSession("account:chair", "c2", NOW, NOW + timedelta(hours=1))
    await console.create_session(HASH, mine)
    await console.create_session("ab" * 32, theirs)
    await console.delete_session(HASH)
    await console.delete_session(HASH)  # twice: nothing to do
    assert await console.session(HASH, NOW) is None
    assert await console.session("ab" * 32, NOW) == theirs


async def test_a_login_link_gives_its_subject_once(console: SqlConsoleStore) -> None:
    await console.create_login_link(HASH, "telegram:42", NOW + timedelta(minutes=15))
    assert await console.use_login_link(HASH, NOW + timedelta(minutes=1)) == "telegram:42"
    assert await console.use_login_link(HASH, NOW + timedelta(minutes=2)) is None
    assert await console.use_login_link("00" * 32, NOW) is None


async def test_an_expired_login_link_gives_nothing(console: SqlConsoleStore) -> None:
    await console.create_login_link(HASH, "matrix:@chair:un.org", NOW + timedelta(minutes=15))
    assert await console.use_login_link(HASH, NOW + timedelta(minutes=15)) is None
    assert await console.use_login_link(HASH, NOW + timedelta(minutes=14)) == "matrix:@chair:un.org"


async def test_racing_uses_of_one_link_in_one_process_give_it_once(console: SqlConsoleStore) -> None:
    await console.create_login_link(HASH, "discord:1234", NOW + timedelta(minutes=15))
    results = await asyncio.gather(*(console.use_login_link(HASH, NOW) for _ in range(8)))
    assert [r for r in results if r is not None] == ["discord:1234"] and results.count(None) == 7


@pytest.fixture
async def other_process(store_url: str, console: SqlConsoleStore) -> AsyncIterator[list[SqlConsoleStore]]:
    engines = [create_engine(store_url) for _ in range(3)]
    try:
        yield [SqlConsoleStore(e) for e in engines]
    finally:
        for e in engines:
            await e.dispose()


async def test_racing_uses_of_one_link_across_engines_give_it_once(
    console: SqlConsoleStore, other_process: list[SqlConsoleStore]
) -> None:
    for n in range(5):
        token = f"{n:064x}"
        await console.create_login_link(token, f"telegram:{n}", NOW + timedelta(minutes=15))
        results = await asyncio.gather(*(c.use_login_link(token, NOW) for c in [console, *other_process]))
        assert [r for r in results if r is not None] == [f"telegram:{n}"] and results.count(None) == 3, results
