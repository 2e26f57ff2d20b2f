"""Two floorbridge processes on one PostgreSQL database (two full sets of services, each with its
own engine and its own LISTEN connection): a change of a list of speakers in one reaches the
other's memory and live pages; outbox rows written by one wake the other's delivery; roles that
cannot work are refused; each platform is run by one process at a time, and a process whose lock
session ends stops the platform and runs it again once it holds the lock again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

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
        self.database = ""

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
                                  on_outbox=woken.append, on_listening=floor.resync)
                await live.start()
                stack.push_async_callback(live.stop)
                made.append(Process(svc, live, woken))
                made[-1].database = name
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


async def test_a_change_made_while_the_listener_was_away_is_seen_once_it_listens_again(
        two: tuple[Process, Process]) -> None:
    a, b = two
    assert (await b.floor.view(WSIS, SESSION)).order == []
    watcher = b.floor.watch(WSIS, SESSION)
    await _end_sessions(a.database)  # b's listener reconnects after a second; its notice is lost
    await a.floor.request(WSIS, SESSION, _ask("web:1"), _me("web:1"))  # a's pool opens a new connection
    assert b.live.received == 0
    await asyncio.wait_for(watcher.get(), 10)  # woken once b listens again
    seen = await b.floor.view(WSIS, SESSION)
    assert [seen.speakers[i].participant.key for i in seen.order] == ["web:1"]


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
        with pytest.raises(InvalidInput, match="only PostgreSQL is shared between machines"):
            check_role(settings, role)
    check_role(settings, "worker", linked=True)  # the chat worker `serve --role all` starts itself
    with pytest.raises(InvalidInput, match="not one of all, web, worker"):
        check_role(settings, "both")


class Runner:
    """What PlatformLocks drives: who runs which platform, and whether two ever ran one at once."""

    def __init__(self) -> None:
        self.running: dict[str, set[str]] = {}
        self.events: list[str] = []
        self.overlaps: list[str] = []

    def callbacks(self, who: str) -> dict[str, Any]:
        async def acquired(platform: str) -> None:
            holders = self.running.setdefault(platform, set())
            if holders - {who}:
                self.overlaps.append(f"{who} started {platform} while {holders} ran it")
            holders.add(who)
            self.events.append(f"{who} started {platform}")

        async def lost(platform: str) -> None:
            self.running.get(platform, set()).discard(who)
            self.events.append(f"{who} stopped {platform}")

        return {"on_acquired": acquired, "on_lost": lost}

    def died(self, who: str) -> None:
        for holders in self.running.values():
            holders.discard(who)

    def runners(self, platform: str) -> set[str]:
        return set(self.running.get(platform, set()))


async def _end_sessions(database: str) -> None:
    """End every session of `database`, as a server restart or an administrator's pg_terminate_backend does."""
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                            "AND pid <> pg_backend_pid()", database)
    finally:
        await admin.close()


async def test_a_platform_belongs_to_one_process_and_is_taken_over_when_its_owner_dies(
        postgres_available: None) -> None:
    name = await create_pg_database()
    url = pg_url(name)
    runner = Runner()
    first = PlatformLocks(url, ["telegram", "discord"], retry_seconds=0.1, **runner.callbacks("first"))
    second = PlatformLocks(url, ["telegram", "discord"], retry_seconds=0.1, **runner.callbacks("second"))
    try:
        await first.start()
        await _until(lambda: len(runner.events) == 2)
        await second.start()
        await asyncio.sleep(0.5)
        assert sorted(runner.events) == ["first started discord", "first started telegram"]  # a standby waits
        await first.stop()  # the owner goes away (its sessions end, as with kill -9)
        runner.died("first")
        await _until(lambda: len(runner.events) == 4, within=10)
        assert sorted(runner.events[2:]) == ["second started discord", "second started telegram"]
        assert second.owned == {"telegram", "discord"}
        assert runner.overlaps == []
    finally:
        await first.stop()
        await second.stop()
        await drop_pg_database(name)


async def test_an_owner_whose_session_ends_stops_the_platform_and_runs_it_again_once_it_holds_the_lock(
        postgres_available: None) -> None:
    name = await create_pg_database()
    runner = Runner()
    locks = PlatformLocks(pg_url(name), ["telegram", "discord"], retry_seconds=0.1, health_seconds=0.5,
                          **runner.callbacks("only"))
    try:
        await locks.start()
        await _until(lambda: len(runner.events) == 2)
        await _end_sessions(name)
        # Stopped at once (it cannot know it is the only sender any more), then started again
        # in the same process once the lock is its own again: no supervisor, no exit.
        await _until(lambda: len(runner.events) == 6, within=10)
        assert locks.acquired == {"telegram": 2, "discord": 2} and locks.lost == {"telegram": 1, "discord": 1}
        for platform in ("telegram", "discord"):
            mine = [e for e in runner.events if e.endswith(platform)]
            assert mine == [f"only started {platform}", f"only stopped {platform}", f"only started {platform}"]
        assert locks.owned == {"telegram", "discord"}
    finally:
        await locks.stop()
        await drop_pg_database(name)


async def test_after_every_session_ends_each_platform_is_run_by_exactly_one_of_two_processes(
        postgres_available: None) -> None:
    name = await create_pg_database()
    url = pg_url(name)
    runner = Runner()
    first = PlatformLocks(url, ["telegram", "discord", "matrix"], retry_seconds=0.05, health_seconds=0.5,
                          **runner.callbacks("first"))
    second = PlatformLocks(url, ["telegram", "discord", "matrix"], retry_seconds=0.05, health_seconds=0.5,
                           **runner.callbacks("second"))
    def started() -> int:
        return sum(1 for e in runner.events if " started " in e)

    try:
        await first.start()
        await _until(lambda: started() == 3)
        await second.start()
        for _ in range(3):  # the owner and the standby both lose their sessions; they race for the locks
            before = started()
            await _end_sessions(name)
            await _until(lambda before=before: started() == before + 3, within=10)
            for platform in ("telegram", "discord", "matrix"):
                assert len(runner.runners(platform)) == 1, (platform, runner.events)
            assert first.owned.isdisjoint(second.owned) and len(first.owned | second.owned) == 3
        assert runner.overlaps == []
    finally:
        await first.stop()
        await second.stop()
        await drop_pg_database(name)


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


async def test_processes_starting_together_share_the_platforms(postgres_available: None) -> None:
    """The first process to start does not take every platform: one already running some asks
    later, so three platforms go to two processes as two and one."""
    name = await create_pg_database()
    url = pg_url(name)
    runner = Runner()
    processes = [PlatformLocks(url, ["telegram", "discord", "matrix"], retry_seconds=0.05, health_seconds=0.5,
                               spread_seconds=0.3, **runner.callbacks(who)) for who in ("first", "second")]
    try:
        await asyncio.gather(*(p.start() for p in processes))
        await _until(lambda: len(processes[0].owned) + len(processes[1].owned) == 3, within=10)
        assert sorted(len(p.owned) for p in processes) == [1, 2]
        assert not processes[0].owned & processes[1].owned
    finally:
        for p in processes:
            await p.stop()
        await drop_pg_database(name)
