"""Two floorbridge processes on one PostgreSQL database (two full sets of services, each with its
own engine and its own LISTEN connection): a change of a list of speakers in one reaches the
other's memory and live pages; outbox rows written by one wake the other's delivery; roles that
cannot work are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import pytest

from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.storage.live import LiveEvents
from floorbridge.adapters.storage.ownership import PlatformLocks
from floorbridge.app import Services, check_role, services
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.core.speakers import Actor, Channel, Participant, RequestFloor

from .conftest import PG_ADMIN_DSN, create_pg_database, drop_pg_database, pg_url

pytestmark = pytest.mark.postgres

WSIS = MeetingId("wsis-2025")
SESSION = SessionId("hls-statements-1")


class Process:
    def __init__(self, svc: Services, live: LiveEvents, woken: list[list[str]]) -> None:
        self.svc, self.live, self.woken = svc, live, woken

    @property
    def floor(self):  # type: ignore[no-untyped-def]
        assert self.svc.chat.floor is not None
        return self.svc.chat.floor


@pytest.fixture
async def two(postgres_available: None, tmp_path: Path) -> AsyncIterator[tuple[Process, Process]]:
    name = await create_pg_database()
    config = tmp_path / "fb.yaml"
    config.write_text(f"database:\n  url: {pg_url(name)}\n")
    settings = load_settings(config, env={})
    try:
        async with AsyncExitStack() as stack:
            made = []
            for _ in range(2):
                svc = await stack.enter_async_context(services(settings))
                woken: list[list[str]] = []
                floor = svc.chat.floor
                assert floor is not None
                live = LiveEvents(settings.database_url(),
                                  on_floor=lambda m, s, v, f=floor: f.changed_elsewhere(MeetingId(m), SessionId(s), v),
                                  on_outbox=woken.append)
                await live.start()
                stack.push_async_callback(live.stop)
                made.append(Process(svc, live, woken))
            await made[0].svc.seed()
            yield made[0], made[1]
    finally:
        await drop_pg_database(name)


def _ask(key: str) -> RequestFloor:
    return RequestFloor(Participant(key, f"Delegate {key}", "Ghana", Channel(key.partition(":")[0])))


def _me(key: str) -> Actor:
    return Actor(key, f"Delegate {key}", Channel(key.partition(":")[0]))


async def _until(condition, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the events arrive on another connection)
            await asyncio.sleep(0.02)


async def test_a_change_in_one_process_reaches_the_other(two: tuple[Process, Process]) -> None:
    a, b = two
    assert (await b.floor.view(WSIS, SESSION)).order == []  # b follows the list, empty
    watcher = b.floor.watch(WSIS, SESSION)
    await a.floor.request(WSIS, SESSION, _ask("web:1"), _me("web:1"))
    version = await asyncio.wait_for(watcher.get(), 5)  # b's live pages are woken
    assert version == 1
    seen = await b.floor.view(WSIS, SESSION)
    assert [seen.speakers[i].participant.key for i in seen.order] == ["web:1"]
    # And the other way round, interleaved: the final order is the order of receipt.
    await b.floor.request(WSIS, SESSION, _ask("telegram:2"), _me("telegram:2"))
    await a.floor.request(WSIS, SESSION, _ask("discord:3"), _me("discord:3"))
    await _until(lambda: b.live.received >= 3)
    final = await b.floor.view(WSIS, SESSION)
    assert [final.speakers[i].participant.key for i in final.order] == ["web:1", "telegram:2", "discord:3"]


async def test_outbox_rows_written_by_one_process_wake_the_others(two: tuple[Process, Process]) -> None:
    a, b = two
    b.woken.clear()
    await a.svc.chats.enqueue([OutgoingMessage(ChatRef(Platform.DISCORD, "55"), message(p("hello")))])
    await _until(lambda: ["discord"] in b.woken)


def test_roles_that_cannot_work_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "fb.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/fb.db\n")
    settings = load_settings(config, env={})
    check_role(settings, "all")
    for role in ("web", "worker"):
        with pytest.raises(InvalidInput, match="SQLite cannot be shared"):
            check_role(settings, role)
    with pytest.raises(InvalidInput, match="not one of all, web, worker"):
        check_role(settings, "both")


async def test_a_platform_belongs_to_one_process_and_is_taken_over_when_its_owner_dies(
        postgres_available: None) -> None:
    name = await create_pg_database()
    url = pg_url(name)
    started: list[str] = []
    lost: list[str] = []
    first = PlatformLocks(url, ["telegram", "discord"], on_acquired=lambda p: _note(started, f"first {p}"),
                          on_lost=lost.append, retry_seconds=0.1)
    second = PlatformLocks(url, ["telegram", "discord"], on_acquired=lambda p: _note(started, f"second {p}"),
                           on_lost=lost.append, retry_seconds=0.1)
    try:
        await first.start()
        await _until(lambda: len(started) == 2)
        await second.start()
        await asyncio.sleep(0.5)
        assert sorted(started) == ["first discord", "first telegram"]  # the second waits as a standby
        await first.stop()  # the owner goes away (its sessions end, as with kill -9)
        await _until(lambda: len(started) == 4, within=10)
        assert sorted(started[2:]) == ["second discord", "second telegram"]
        assert second.owned == {"telegram", "discord"} and lost == []
        # An owner whose session is ended under it is told, and stops.
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                                "AND pid <> pg_backend_pid()", name)
        finally:
            await admin.close()
        await _until(lambda: sorted(lost) == ["discord", "telegram"], within=10)
    finally:
        await first.stop()
        await second.stop()
        await drop_pg_database(name)


async def _note(seen: list[str], what: str) -> None:
    seen.append(what)


async def test_two_processes_asking_at_once_lose_nothing_and_keep_the_receipt_order(
        two: tuple[Process, Process]) -> None:
    a, b = two
    asks = [(a if n % 2 else b, f"{'web' if n % 2 else 'telegram'}:{n}") for n in range(300)]
    outcomes = await asyncio.gather(*(process.floor.request(WSIS, SESSION, _ask(key), _me(key))
                                      for process, key in asks))
    assert len(outcomes) == 300  # none refused after colliding with the other process
    async with asyncio.timeout(5):  # the other process's last commit reaches `a` by its notification
        while len((final := await a.floor.view(WSIS, SESSION)).order) < 300:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    waiting = [final.speakers[i] for i in final.order]
    assert len(waiting) == 300 and len({s.participant.key for s in waiting}) == 300
    assert [s.requested_at for s in waiting] == sorted(s.requested_at for s in waiting)
