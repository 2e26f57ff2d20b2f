"""The delivery engine over a real SQLite outbox, with scripted platforms: order, limits, 429s,
retries, permanent failures and restarts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from floorbridge.adapters.storage import SqlAgendaStore, SqlChatStore, SqlOutbox, open_store
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, Subscription
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutboxItem, OutboxStatus, OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.delivery.engine import Backoff, PlatformWorker
from floorbridge.delivery.errors import MessageRejected, PermanentFailure, RateLimited, TemporaryFailure
from floorbridge.delivery.limits import AdaptiveLimiter, DiscordLimiter, TelegramLimiter
from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

MEETING = MeetingId("fg-dlt-1")
MODERATORS = ChatRef(Platform.TELEGRAM, "-100999")


@dataclass
class ScriptedPlatform:
    """A platform whose answers a test scripts per chat: a queue of outcomes, then success."""

    platform: Platform = Platform.TELEGRAM
    script: dict[str, list[Exception]] = field(default_factory=dict)
    delivered: list[tuple[float, str, str]] = field(default_factory=list)  # (time, chat, text)
    attempts: list[tuple[float, str]] = field(default_factory=list)
    delay: float = 0.0

    async def send(self, item: OutboxItem) -> str:
        chat = item.outgoing.chat.chat_id
        self.attempts.append((time.monotonic(), chat))
        if self.delay:
            await asyncio.sleep(self.delay)
        outcomes = self.script.get(chat, [])
        if outcomes:
            raise outcomes.pop(0)
        self.delivered.append((time.monotonic(), chat, item.outgoing.message.plain()))
        return str(len(self.delivered))

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        return existing or await self.send(item)


@dataclass
class Bed:
    store: SqlAgendaStore
    outbox: SqlOutbox
    chats: SqlChatStore

    def worker(self, platform: ScriptedPlatform, limiter: object | None = None, **kwargs: object) -> PlatformWorker:
        def notices(item: OutboxItem, reason: str) -> list[OutgoingMessage]:
            return [OutgoingMessage(MODERATORS, message(p(f"{item.outgoing.chat} failed: {reason}")),
                                    meeting_id=MEETING, dedup_key=f"failed:{item.id}")]

        return PlatformWorker(
            platform, self.outbox, limiter or TelegramLimiter(1000, 0.0, 1000),  # type: ignore[arg-type]
            failure_notices=notices, poll_seconds=0.05, backoff=Backoff(base=0.05, cap=0.2), **kwargs,  # type: ignore[arg-type]
        )

    async def queue(self, chat: str, *texts: str, platform: Platform = Platform.TELEGRAM) -> None:
        await self.chats.enqueue([OutgoingMessage(ChatRef(platform, chat), message(p(t)), meeting_id=MEETING)
                                   for t in texts])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def bed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bed]:
    """The outbox and chat tables on both backends (PostgreSQL at 127.0.0.1:5432, a database per test)."""
    from datetime import date

    database = None
    if request.param == "postgresql":
        database = await create_pg_database()
        store = await open_store(pg_url(database))
    else:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/fb.db")

    await store.upsert_meeting(Meeting(MEETING, "FG DLT", "ITU", "Europe/Zurich", date(2017, 10, 17),
                                       date(2017, 10, 19)))
    try:
        yield Bed(store, SqlOutbox(store.engine), SqlChatStore(store.engine))
    finally:
        await store.close()
        if database is not None:
            await drop_pg_database(database)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_messages_to_one_chat_keep_their_order_and_spacing(bed: Bed) -> None:
    platform = ScriptedPlatform()
    await bed.queue("1", *(f"m{n}" for n in range(5)))
    await bed.queue("2", *(f"n{n}" for n in range(5)))
    worker = bed.worker(platform, TelegramLimiter(1000, 0.1, 1000))
    worker.start()
    await until(lambda: len(platform.delivered) == 10)
    await worker.stop()
    for chat, prefix in (("1", "m"), ("2", "n")):
        mine = [(t, text) for t, c, text in platform.delivered if c == chat]
        assert [text for _, text in mine] == [f"{prefix}{n}" for n in range(5)]
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(mine)]
        assert min(gaps) >= 0.1
    # the two chats were served side by side, not one after the other
    assert platform.delivered[1][1] != platform.delivered[0][1]


async def test_telegram_group_and_global_limits_space_the_sends() -> None:
    limiter = TelegramLimiter(per_second=5, per_chat_interval=0.0, group_per_minute=3)
    group = ChatRef(Platform.TELEGRAM, "-1")
    now = 100.0
    for n in range(3):
        assert limiter.delay(group, now + n * 0.05) == 0
        limiter.take(group, now + n * 0.05)
    assert limiter.delay(group, now + 0.15) > 59  # the fourth waits for the minute to pass
    others = [ChatRef(Platform.TELEGRAM, str(n)) for n in range(2)]
    for chat in others:
        limiter.take(chat, now)
    assert limiter.delay(ChatRef(Platform.TELEGRAM, "9"), now + 0.15) > 0.8  # 5 sends in this second already
    discord = DiscordLimiter(per_second=2)
    discord.take(group, now)
    discord.take(others[0], now)
    assert discord.delay(others[1], now + 0.5) > 0.4


async def test_a_429_is_honoured_exactly_once_and_then_the_message_goes(bed: Bed) -> None:
    platform = ScriptedPlatform(script={"1": [RateLimited(0.4)]})
    await bed.queue("1", "first", "second")
    worker = bed.worker(platform)
    worker.start()
    await until(lambda: len(platform.delivered) == 2)
    await worker.stop()
    (t0, _), (t1, _), *_ = platform.attempts
    assert t1 - t0 >= 0.4
    assert len(platform.attempts) == 3  # one refused attempt, no extra requests
    assert [text for *_, text in platform.delivered] == ["first", "second"]
    assert worker.stats.rate_limited == 1


async def test_a_platform_wide_429_pauses_every_chat(bed: Bed) -> None:
    platform = ScriptedPlatform(platform=Platform.MATRIX, script={"!a": [RateLimited(0.3, whole_platform=True)]})
    await bed.queue("!a", "a", platform=Platform.MATRIX)
    await bed.queue("!b", "b", platform=Platform.MATRIX)
    await bed.queue("!c", "c", platform=Platform.MATRIX)
    # 5 per second with a bucket of two: "!a" and "!b" start at once, "!c" is due 0.2 s later,
    # inside the 0.3 s the homeserver asked for.
    limiter = AdaptiveLimiter(5)
    worker = bed.worker(platform, limiter)
    worker.start()
    await until(lambda: len(platform.delivered) == 3)
    await worker.stop()
    refused_at = platform.attempts[0][0]
    assert platform.attempts[0][1] == "!a"
    delivered = {chat: t for t, chat, _ in platform.delivered}
    assert delivered["!c"] - refused_at >= 0.3  # another room waited too
    assert delivered["!a"] - refused_at >= 0.3
    assert limiter.rate == 2.5  # halved after M_LIMIT_EXCEEDED


async def test_temporary_failures_are_retried_with_backoff(bed: Bed) -> None:
    platform = ScriptedPlatform(script={"1": [TemporaryFailure("502"), TemporaryFailure("timeout")]})
    await bed.queue("1", "hello", "after")
    worker = bed.worker(platform)
    worker.start()
    await until(lambda: len(platform.delivered) == 2)
    await worker.stop()
    assert [text for *_, text in platform.delivered] == ["hello", "after"]  # order kept across retries
    rows = await bed.outbox.rows()
    assert [(s, item.attempts) for item, s, _ in rows] == [(OutboxStatus.SENT, 2), (OutboxStatus.SENT, 0)]


async def test_a_blocked_chat_stops_its_subscription_and_tells_the_moderators(bed: Bed) -> None:
    gone = ChatRef(Platform.TELEGRAM, "1")
    await bed.chats.save_profile(ChatProfile(gone))
    await bed.chats.save_subscription(Subscription(gone, MEETING))
    platform = ScriptedPlatform(script={"1": [PermanentFailure("Forbidden: bot was blocked by the user")]})
    await bed.queue("1", "one", "two", "three")
    worker = bed.worker(platform)
    worker.start()
    await until(lambda: any(c == MODERATORS.chat_id for _, c, _ in platform.delivered))
    await worker.stop()
    assert len([a for a in platform.attempts if a[1] == "1"]) == 1  # no retry loop
    [sub] = await bed.chats.subscriptions_of(gone)
    assert not sub.active and sub.stopped_reason == "Forbidden: bot was blocked by the user"
    statuses = [s for item, s, _ in await bed.outbox.rows(gone)]
    assert statuses == [OutboxStatus.FAILED] * 3
    [(_, _, notice)] = [d for d in platform.delivered if d[1] == MODERATORS.chat_id]
    assert "telegram:1 failed: Forbidden: bot was blocked by the user" in notice


async def test_a_rejected_message_fails_alone(bed: Bed) -> None:
    chat = ChatRef(Platform.TELEGRAM, "1")
    await bed.chats.save_profile(ChatProfile(chat))
    await bed.chats.save_subscription(Subscription(chat, MEETING))
    platform = ScriptedPlatform(script={"1": [MessageRejected("Bad Request: can't parse entities")]})
    await bed.queue("1", "bad", "good")
    worker = bed.worker(platform)
    worker.start()
    await until(lambda: len(platform.delivered) == 1)
    await worker.stop()
    [sub] = await bed.chats.subscriptions_of(chat)
    assert sub.active
    rows = await bed.outbox.rows(chat)
    assert [(s, err) for _, s, err in rows] == [(OutboxStatus.FAILED, "Bad Request: can't parse entities"),
                                               (OutboxStatus.SENT, "")]


async def test_a_restart_resumes_where_the_last_worker_stopped(bed: Bed) -> None:
    platform = ScriptedPlatform(delay=0.02)
    await bed.queue("1", *(f"m{n}" for n in range(30)))
    first = bed.worker(platform, TelegramLimiter(1000, 0.0, 1000))
    first.start()
    await until(lambda: len(platform.delivered) >= 5)
    await first.stop()
    second = bed.worker(platform, TelegramLimiter(1000, 0.0, 1000))
    second.start()
    await until(lambda: len(platform.delivered) == 30)
    await asyncio.sleep(0.2)
    await second.stop()
    assert [text for *_, text in platform.delivered] == [f"m{n}" for n in range(30)]


async def test_one_platform_down_does_not_delay_another(bed: Bed) -> None:
    down = ScriptedPlatform(platform=Platform.DISCORD, delay=3.0)  # hangs on every send
    up = ScriptedPlatform(platform=Platform.TELEGRAM)
    await bed.queue("d", *(f"d{n}" for n in range(20)), platform=Platform.DISCORD)
    await bed.queue("t", *(f"t{n}" for n in range(20)), platform=Platform.TELEGRAM)
    workers = [bed.worker(down, DiscordLimiter(1000)), bed.worker(up, TelegramLimiter(1000, 0.0, 1000))]
    started = time.monotonic()
    for w in workers:
        w.start()
    await until(lambda: len(up.delivered) == 20, timeout=3)
    assert time.monotonic() - started < 2
    for w in workers:
        await w.stop()


# ---------------------------------------------------------------- several processes, one PostgreSQL


@pytest.fixture
async def pg_bed() -> AsyncIterator[tuple[Bed, str]]:
    database = await create_pg_database()
    store = await open_store(pg_url(database))
    from datetime import date

    await store.upsert_meeting(Meeting(MEETING, "FG DLT", "ITU", "Europe/Zurich", date(2017, 10, 17),
                                       date(2017, 10, 19)))
    try:
        yield Bed(store, SqlOutbox(store.engine), SqlChatStore(store.engine)), pg_url(database)
    finally:
        await store.close()
        await drop_pg_database(database)


@pytest.mark.postgres
async def test_processes_claiming_at_once_never_take_the_same_row(pg_bed: tuple[Bed, str]) -> None:
    bed, url = pg_bed
    for chat in range(40):
        await bed.queue(str(chat), *(f"c{chat} m{n}" for n in range(10)))
    stores = [await open_store(url) for _ in range(3)]  # three processes' engines
    try:
        outboxes = [SqlOutbox(s.engine) for s in stores]
        taken: list[list[int]] = [[], [], []]

        async def claim_all(i: int) -> None:
            while rows := await outboxes[i].due(Platform.TELEGRAM, 7, exclude=taken[i]):  # as a worker does
                taken[i].extend(r.id for r in rows)

        await asyncio.gather(*(claim_all(i) for i in range(3)))
        everything = [row_id for ids in taken for row_id in ids]
        assert len(everything) == 400 and len(set(everything)) == 400  # all taken, none twice
        assert all(taken), [len(t) for t in taken]  # they really ran side by side
        assert await outboxes[0].due(Platform.TELEGRAM, 500, exclude=taken[0]) == []  # nor anyone else's
    finally:
        for s in stores:
            await s.close()


@pytest.mark.postgres
async def test_a_new_owner_takes_back_what_a_gone_owner_took_and_did_not_settle(pg_bed: tuple[Bed, str]) -> None:
    bed, url = pg_bed
    await bed.queue("1", *(f"m{n}" for n in range(30)))
    gone = await open_store(url)
    old = SqlOutbox(gone.engine)
    rows = await old.due(Platform.TELEGRAM, 20)
    for row in rows[:5]:
        await old.mark_sent(row.id, f"sent-{row.id}")
    await gone.close()  # the old owner dies with 15 rows taken and not settled
    assert [r.outgoing.message.plain() for r in await bed.outbox.due(Platform.TELEGRAM, 500, exclude=())] == [
        f"m{n}" for n in range(20, 30)]  # what it had taken is not anybody's yet…
    platform = ScriptedPlatform()
    worker = bed.worker(platform, TelegramLimiter(1000, 0.0, 1000))
    worker.start()  # …until a new owner starts delivering the platform
    await until(lambda: len(platform.delivered) == 25)
    await asyncio.sleep(0.2)
    await worker.stop()
    assert [text for *_, text in platform.delivered] == [f"m{n}" for n in range(5, 30)]


class FlakyOutbox:
    """The real outbox, whose "sent" cannot be stored while `down` (the database away)."""

    def __init__(self, outbox: SqlOutbox) -> None:
        self._outbox = outbox
        self.down = False
        self.refused = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._outbox, name)

    async def mark_sent(self, item_id: int, platform_message_id: str) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("the database is away")
        await self._outbox.mark_sent(item_id, platform_message_id)


async def test_when_sent_cannot_be_stored_sending_waits_and_nothing_goes_twice(bed: Bed) -> None:
    platform = ScriptedPlatform(delay=0.01)
    await bed.queue("1", *(f"a{n}" for n in range(20)))
    await bed.queue("2", *(f"b{n}" for n in range(20)))
    flaky = FlakyOutbox(bed.outbox)
    worker = PlatformWorker(platform, flaky, TelegramLimiter(1000, 0.0, 1000),  # type: ignore[arg-type]
                            poll_seconds=0.05, backoff=Backoff(base=0.05, cap=0.2))
    worker.start()
    await until(lambda: len(platform.delivered) >= 4)
    flaky.down = True
    await until(lambda: flaky.refused >= 1)
    during = len(platform.delivered)
    await asyncio.sleep(0.5)
    # At most the sends already in flight (one per chat) finished; nothing new started meanwhile.
    assert len(platform.delivered) <= during + 2
    flaky.down = False
    await until(lambda: len(platform.delivered) == 40)
    await asyncio.sleep(0.3)
    await worker.stop()
    texts = [text for *_, text in platform.delivered]
    assert sorted(texts) == sorted([f"a{n}" for n in range(20)] + [f"b{n}" for n in range(20)])  # each once
    assert [t for t in texts if t.startswith("a")] == [f"a{n}" for n in range(20)]  # in order
    assert not await bed.outbox.due(Platform.TELEGRAM, 100)  # every one stored as sent
