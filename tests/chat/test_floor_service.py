"""The floor service over real storage (SQLite and PostgreSQL): group commit keeps receipt order
under a burst, two moderators acting at once make one change, two processes on one database stay
consistent, and a failed store loses nothing that was acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from floorbridge.adapters.chat_bridge import ReplyQueue
from floorbridge.adapters.floor_service import FloorService
from floorbridge.adapters.storage import SqlSpeakerStore
from floorbridge.bots.events import Incoming
from floorbridge.core.chats import ChatRef, Platform, UserRef
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.speakers import Actor, Channel, Next, Participant, QueueRefused, RequestFloor
from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

from .conftest import Stage, open_stage

WSIS, HLS = MeetingId("wsis-2025"), SessionId("hls-statements-1")
CHAIR = Actor("telegram:42", "Chair", Channel.TELEGRAM, moderator=True)


@asynccontextmanager
async def opened(tmp_path: Path, database: str) -> AsyncIterator[Stage]:
    """A stage on a fresh database: SQLite in `tmp_path`, or a PostgreSQL database dropped after."""
    name = await create_pg_database() if database == "postgresql" else None
    try:
        stage = await open_stage(tmp_path, pg_url(name) if name is not None else None)
        try:
            yield stage
        finally:
            await stage.store.close()
    finally:
        if name is not None:
            await drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_stage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stage]:
    async with opened(tmp_path, request.param) as stage:
        yield stage


@pytest.fixture
async def postgres_stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with opened(tmp_path, "postgresql") as stage:
        yield stage


def delegate(n: int, channel: Channel = Channel.WEB) -> tuple[RequestFloor, Actor]:
    p = Participant(f"{channel}:{n}", f"Delegate {n}", f"Country {n}", channel)
    return RequestFloor(p), Actor(p.key, p.name, channel)


def service(stage: Stage) -> FloorService:
    return FloorService(SqlSpeakerStore(stage.store.engine), stage.store, clock=stage.clock)


async def test_a_burst_is_stored_in_receipt_order_with_nothing_lost_or_doubled(any_stage: Stage) -> None:
    floor = service(any_stage)
    channels = list(Channel)
    outcomes = await asyncio.gather(*(floor.request(WSIS, HLS, *delegate(n, channels[n % 5])) for n in range(600)))
    stored = await SqlSpeakerStore(any_stage.store.engine).load_list(WSIS, HLS)
    assert stored is not None and len(stored.order) == 600 and stored.version == 600
    by_receipt = sorted(stored.waiting(), key=lambda s: (s.requested_at, s.receipt))
    assert stored.waiting() == by_receipt
    assert sorted(o.speaker.participant.key for o in outcomes if o.speaker) == sorted(
        s.participant.key for s in stored.waiting())
    # acknowledged positions were true when given: each is the place at its receipt
    assert [o.speaker.id for o in outcomes if o.speaker] == [s.id for s in stored.waiting()]


async def test_two_moderators_pressing_next_at_once_make_one_change(any_stage: Stage) -> None:
    floor = service(any_stage)
    for n in range(3):
        await floor.request(WSIS, HLS, *delegate(n))
    vice = Actor("matrix:@vice:example.org", "Vice-chair", Channel.MATRIX, moderator=True)
    results = await asyncio.gather(floor.act(WSIS, HLS, Next(), CHAIR), floor.act(WSIS, HLS, Next(), vice),
                                   return_exceptions=True)
    assert sum(isinstance(r, ConcurrentChange) for r in results) == 1
    lst = await floor.view(WSIS, HLS)
    assert lst.current_speaker().participant.name == "Delegate 0"  # type: ignore[union-attr]
    assert [s.participant.name for s in lst.waiting()] == ["Delegate 1", "Delegate 2"]
    trail = await SqlSpeakerStore(any_stage.store.engine).audit_trail(WSIS, HLS)
    assert [e.action for e in trail].count("next") == 1


async def test_two_processes_on_one_database_both_land(any_stage: Stage) -> None:
    first, second = service(any_stage), service(any_stage)
    await first.view(WSIS, HLS)
    await second.view(WSIS, HLS)  # both hold version 0 in memory
    await asyncio.gather(*(f.request(WSIS, HLS, *delegate(n)) for n, f in
                           ((n, first if n % 2 else second) for n in range(40))))
    fresh = await service(any_stage).view(WSIS, HLS)
    assert len(fresh.order) == 40 and fresh.version == 40
    assert fresh.waiting() == sorted(fresh.waiting(), key=lambda s: (s.requested_at, s.receipt))


@pytest.mark.postgres
async def test_what_one_process_acknowledged_the_other_shows_at_once(postgres_stage: Stage) -> None:
    # No listener is wired here: no notice of the other process's change ever arrives. A delegate
    # told "you are number 3" by one web server sees it on the other's page straight away.
    first, second = service(postgres_stage), service(postgres_stage)
    await first.request(WSIS, HLS, *delegate(1))
    assert [s.participant.name for s in (await second.view(WSIS, HLS)).waiting()] == ["Delegate 1"]
    for n in (2, 3):
        postgres_stage.clock.advance(seconds=1)
        await first.request(WSIS, HLS, *delegate(n))
    views = await asyncio.gather(*(second.view(WSIS, HLS) for _ in range(20)))
    assert {tuple(s.participant.name for s in v.waiting()) for v in views} == {
        ("Delegate 1", "Delegate 2", "Delegate 3")}
    postgres_stage.clock.advance(seconds=1)
    await second.request(WSIS, HLS, *delegate(4))
    assert [s.participant.name for s in (await first.view(WSIS, HLS)).waiting()] == [
        "Delegate 1", "Delegate 2", "Delegate 3", "Delegate 4"]


async def test_bad_requests_are_refused_with_the_reason(any_stage: Stage) -> None:
    floor = service(any_stage)
    with pytest.raises(NotFound, match="no session 'nope'"):
        await floor.request(WSIS, SessionId("nope"), *delegate(1))
    with pytest.raises(QueueRefused, match="only the meeting's moderators"):
        await floor.act(WSIS, HLS, Next(), Actor("web:1", "Someone", Channel.WEB))
    await floor.request(WSIS, HLS, *delegate(1))
    with pytest.raises(QueueRefused, match="already have an open request"):
        await floor.request(WSIS, HLS, *delegate(1))
    cancelled = SessionId("tw-gender")  # tentative, not cancelled: accepted
    await floor.request(WSIS, cancelled, *delegate(2))


async def test_a_chat_request_keeps_the_place_of_its_arrival_while_it_waits_its_turn(stage: Stage) -> None:
    # The chat side handles a few commands at a time: one that arrives during a burst waits for
    # its turn, and a web request may overtake it in the meantime. Its place is its arrival.
    runtime = stage.runtime()
    await runtime.floor.start()  # type: ignore[union-attr]
    turns = asyncio.Semaphore(1)
    replies = ReplyQueue(runtime.conversation, stage.chats, lambda: None, turns)
    amina = Incoming(ChatRef(Platform.TELEGRAM, "1001"), UserRef(Platform.TELEGRAM, "1001"), f"floor {HLS} Kenya",
                     user_name="Amina")
    try:
        async with turns:  # a burst occupies the chat side
            waiting = asyncio.create_task(replies.handle(amina))
            await asyncio.sleep(0.05)
            stage.clock.advance(seconds=2)
            await runtime.floor.request(WSIS, HLS, *delegate(7))  # type: ignore[union-attr]
        await waiting
        lst = await runtime.floor.view(WSIS, HLS)  # type: ignore[union-attr]
        assert [s.participant.name for s in lst.waiting()] == ["Amina", "Delegate 7"]
    finally:
        await runtime.floor.stop()  # type: ignore[union-attr]
