"""Messages with a thread_key go together on every platform, through the real delivery engine and the
real client libraries: Telegram replies to the first message, Discord posts into a thread started on it,
Matrix relates them to it as m.thread (read back from Synapse). The thread is kept in the database, so a
restarted process sends into the same one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from floorbridge.adapters.chat_runtime import ChatRuntime, command_descriptions
from floorbridge.adapters.discord.bot import DiscordAdapter
from floorbridge.adapters.matrix.bot import MatrixAdapter
from floorbridge.adapters.storage import SqlChatStore, SqlOutbox, open_store
from floorbridge.adapters.storage.tables import chat_threads
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import ChatThread, OutboxItem, OutboxStatus, OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.delivery.engine import PlatformWorker
from floorbridge.delivery.limits import TelegramLimiter
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.synapse import RegisteredUser, Synapse
from tests.fakes.telegram_api import FakeTelegram
from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

from .conftest import Stage, eventually, open_stage

# Synapse is started once for the module, so every test runs in the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

A, B = "mail:<circular-12@itu.int>", "mail:<circular-13@itu.int>"
A1, A2, A3, A4 = ("Circular 12: registration opens", "Re: Circular 12: corrigendum",
                  "Re: Circular 12: deadline extended", "Re: Circular 12: last call")
B1, B2 = "Circular 13: side events", "Re: Circular 13: rooms"
LOOSE = "Agenda updated"
THREAD_ROUTE = "POST /channels/{channel_id}/messages/{message_id}/threads"


def letter(chat: ChatRef, text: str, key: str | None) -> OutgoingMessage:
    return OutgoingMessage(chat, message(p(text)), thread_key=key, cause=f"mail {key}" if key else "version 2")


def letters(chat: ChatRef) -> list[OutgoingMessage]:
    """Two mail threads and one unthreaded message, interleaved, for one chat."""
    return [letter(chat, A1, A), letter(chat, LOOSE, None), letter(chat, A2, A), letter(chat, B1, B),
            letter(chat, A3, A), letter(chat, B2, B)]


async def all_sent(stage: Stage, chat: ChatRef, count: int) -> bool:
    rows = await stage.outbox.rows(chat)
    return len(rows) == count and all(status is OutboxStatus.SENT for _, status, _ in rows)


@pytest_asyncio.fixture(loop_scope="module")
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    s = await open_stage(tmp_path)
    try:
        yield s
    finally:
        await s.store.close()


# ------------------------------------------------------------------------------ storage and engine


@pytest_asyncio.fixture(loop_scope="module",
                        params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlOutbox]:
    """The outbox on both backends (PostgreSQL at 127.0.0.1:5432, a database per test)."""
    database = await create_pg_database() if request.param == "postgresql" else None
    store = await open_store(pg_url(database) if database else f"sqlite+aiosqlite:///{tmp_path}/fb.db")
    try:
        yield SqlOutbox(store.engine)
    finally:
        await store.close()
        if database is not None:
            await drop_pg_database(database)


async def test_a_chat_thread_is_stored_and_updated(outbox: SqlOutbox) -> None:
    chat, other = ChatRef(Platform.DISCORD, "10"), ChatRef(Platform.DISCORD, "11")
    assert await outbox.chat_thread(chat, A) is None
    await outbox.save_chat_thread(chat, A, ChatThread("500"))
    assert await outbox.chat_thread(chat, A) == ChatThread("500")
    async with outbox._engine.connect() as conn:
        [created] = (await conn.execute(select(chat_threads.c.created_at))).scalars().all()
    await outbox.save_chat_thread(chat, A, ChatThread("500", "500"))  # the Discord thread opened on it
    assert await outbox.chat_thread(chat, A) == ChatThread("500", "500")
    async with outbox._engine.connect() as conn:
        assert (await conn.execute(select(chat_threads.c.created_at))).scalars().all() == [created]
    assert await outbox.chat_thread(chat, B) is None
    assert await outbox.chat_thread(other, A) is None
    assert await outbox.chat_thread(ChatRef(Platform.MATRIX, "10"), A) is None


@dataclass
class Threading:
    """A platform that records what thread each message was sent with."""

    platform: Platform = Platform.TELEGRAM
    sent: list[tuple[str, ChatThread | None]] = field(default_factory=list)

    async def send(self, item: OutboxItem) -> str:
        self.sent.append((item.outgoing.message.plain(), None))
        return str(len(self.sent))

    async def send_in_thread(self, item: OutboxItem, thread: ChatThread | None) -> tuple[str, ChatThread]:
        await asyncio.sleep(0.01)  # the next message of the chat must still wait for the stored thread
        self.sent.append((item.outgoing.message.plain(), thread))
        message_id = str(len(self.sent))
        if thread is None:
            return message_id, ChatThread(message_id)
        return message_id, thread if thread.thread_id else ChatThread(thread.root_message_id, f"t{message_id}")

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        return existing or await self.send(item)


class CountingOutbox(SqlOutbox):
    def __init__(self, outbox: SqlOutbox) -> None:
        super().__init__(outbox._engine)
        self.lookups: list[str] = []
        self.saves: list[tuple[str, ChatThread]] = []

    async def chat_thread(self, chat: ChatRef, thread_key: str) -> ChatThread | None:
        self.lookups.append(thread_key)
        return await super().chat_thread(chat, thread_key)

    async def save_chat_thread(self, chat: ChatRef, thread_key: str, thread: ChatThread) -> None:
        self.saves.append((thread_key, thread))
        await super().save_chat_thread(chat, thread_key, thread)


async def test_the_engine_looks_up_and_stores_threads_only_for_threaded_messages(outbox: SqlOutbox) -> None:
    chat = ChatRef(Platform.TELEGRAM, "1001")
    counting = CountingOutbox(outbox)
    await SqlChatStore(outbox._engine).enqueue(letters(chat))
    platform = Threading()
    worker = PlatformWorker(platform, counting, TelegramLimiter(1000, 0.0, 1000), poll_seconds=0.05)  # type: ignore[arg-type]
    worker.start()
    try:
        await eventually(lambda: len(platform.sent) == 6, what="six sends")
    finally:
        await worker.stop()
    assert platform.sent == [
        (A1, None),
        (LOOSE, None),
        (A2, ChatThread("1")),
        (B1, None),
        (A3, ChatThread("1", "t3")),  # what the second message stored
        (B2, ChatThread("4")),
    ]
    assert counting.lookups == [A, A, B, A, B]  # none for the unthreaded message
    assert counting.saves == [(A, ChatThread("1")), (A, ChatThread("1", "t3")), (B, ChatThread("4")),
                              (B, ChatThread("4", "t6"))]


# ------------------------------------------------------------------------------ Telegram

TELEGRAM_CHAT = -100777


def telegram(fake: FakeTelegram, runtime: ChatRuntime) -> TelegramAdapter:
    return TelegramAdapter(fake.token, base_url=fake.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                           poll_timeout=1)


async def test_telegram_replies_to_the_first_message_of_a_thread(stage: Stage) -> None:
    chat = ChatRef(Platform.TELEGRAM, str(TELEGRAM_CHAT))
    async with FakeTelegram() as fake:
        await stage.chats.enqueue(letters(chat))
        runtime = stage.runtime()
        runtime.add(telegram(fake, runtime))
        await runtime.start()
        try:
            await eventually(lambda: all_sent(stage, chat, 6), timeout=20, what="six messages")
        finally:
            await runtime.stop()

        def sent() -> dict[str, Any]:
            return {s.plain_text: s for s in fake.sent if s.chat_id == TELEGRAM_CHAT and s.method == "sendMessage"}

        def reply_of(text: str) -> int | None:
            stored = fake.message(TELEGRAM_CHAT, sent()[text].message_id) or {}
            return (stored.get("reply_to_message") or {}).get("message_id")

        ids = {text: s.message_id for text, s in sent().items()}
        assert [reply_of(t) for t in (A1, LOOSE, A2, B1, A3, B2)] == [None, None, ids[A1], None, ids[A1], ids[B1]]
        assert sent()[A2].params["reply_parameters"] == {"message_id": ids[A1], "allow_sending_without_reply": True}
        assert "reply_parameters" not in sent()[LOOSE].params
        assert await stage.outbox.chat_thread(chat, A) == ChatThread(str(ids[A1]))
        assert fake.http_429 == 0

        # A new process: the root comes from the database. (It cannot know when the last one sent to the
        # chat, so a 429 at once would be fair: it starts after Telegram's second per chat.)
        await asyncio.sleep(1.1)
        await stage.chats.enqueue([letter(chat, A4, A)])
        restarted = stage.runtime()
        restarted.add(telegram(fake, restarted))
        await restarted.start()
        try:
            await eventually(lambda: all_sent(stage, chat, 7), timeout=10, what="the fourth letter")
        finally:
            await restarted.stop()
        assert reply_of(A4) == ids[A1]


# ------------------------------------------------------------------------------ Discord


@dataclass
class Guild:
    fake: FakeDiscord
    guild: str
    channel: str


@pytest_asyncio.fixture(loop_scope="module")
async def guild() -> AsyncIterator[Guild]:
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild("WSIS delegates")
        yield Guild(fake, guild_id, fake.add_channel(guild_id, "announcements"))


def discord_adapter(g: Guild, runtime: ChatRuntime) -> DiscordAdapter:
    return DiscordAdapter(g.fake.token, replies=runtime.replies_for(Platform.DISCORD), commands=command_descriptions(),
                          api_url=g.fake.api_url, gateway_url=g.fake.gateway_url, guild_ready_timeout=0.05)


async def run_discord(stage: Stage, g: Guild, chat: ChatRef, count: int) -> None:
    runtime = stage.runtime()
    runtime.add(discord_adapter(g, runtime))
    await runtime.start()
    try:
        await eventually(lambda: all_sent(stage, chat, count), timeout=20, what=f"{count} messages")
    finally:
        await runtime.stop()


def contents(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


async def test_discord_starts_a_thread_on_the_first_message_at_the_second(stage: Stage, guild: Guild) -> None:
    g, fake = guild, guild.fake
    chat = ChatRef(Platform.DISCORD, g.channel)
    await stage.chats.enqueue(letters(chat))
    await run_discord(stage, g, chat, 6)

    in_channel = {m["content"]: m for m in fake.messages(g.channel)}
    assert list(in_channel) == [A1, LOOSE, B1]
    assert not any("message_reference" in m for m in in_channel.values())
    threads = {t["id"]: t for t in fake.threads(g.channel)}
    # Each thread was started on its first message (and so has its id), named after it.
    assert set(threads) == {in_channel[A1]["id"], in_channel[B1]["id"]}
    thread_a, thread_b = in_channel[A1]["id"], in_channel[B1]["id"]
    assert (threads[thread_a]["name"], threads[thread_b]["name"]) == (A1, B1)
    assert contents(fake.messages(thread_a)) == [A2, A3]
    assert contents(fake.messages(thread_b)) == [B2]
    assert "thread" not in in_channel[LOOSE]
    assert fake.requests[THREAD_ROUTE] == 2
    assert await stage.outbox.chat_thread(chat, A) == ChatThread(thread_a, thread_a)

    # A new process sends into the thread the database names, without starting another.
    await stage.chats.enqueue([letter(chat, A4, A)])
    await run_discord(stage, g, chat, 7)
    assert contents(fake.messages(thread_a)) == [A2, A3, A4]
    assert contents(fake.messages(g.channel)) == [A1, LOOSE, B1]
    assert fake.requests[THREAD_ROUTE] == 2
    assert fake.http_429 == 0


async def test_discord_replies_to_the_first_message_where_threads_are_not_allowed(stage: Stage,
                                                                                  guild: Guild) -> None:
    g, fake = guild, guild.fake
    chat = ChatRef(Platform.DISCORD, g.channel)
    fake.forbid_threads(g.channel)
    await stage.chats.enqueue([letter(chat, A1, A), letter(chat, A2, A)])
    await run_discord(stage, g, chat, 2)
    first, second = fake.messages(g.channel)
    assert (first["content"], second["content"]) == (A1, A2)
    assert second["message_reference"]["message_id"] == first["id"]
    assert second["referenced_message"]["id"] == first["id"]
    assert fake.threads(g.channel) == []
    assert await stage.outbox.chat_thread(chat, A) == ChatThread(first["id"])


async def test_discord_uses_a_thread_already_started_on_the_first_message(stage: Stage, guild: Guild) -> None:
    """A send into a new thread that failed (a 429, a lost answer) is retried: the thread it started
    is found again (Discord answers 160004, and the thread has the message's id)."""
    g, fake = guild, guild.fake
    chat = ChatRef(Platform.DISCORD, g.channel)
    await stage.chats.enqueue([letter(chat, A1, A)])
    await run_discord(stage, g, chat, 1)
    [root] = fake.messages(g.channel)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http:
        started = await http.post(f"{fake.api_url}/channels/{g.channel}/messages/{root['id']}/threads",
                                  json={"name": "started before"})
        assert started.status == 201
    await stage.chats.enqueue([letter(chat, A2, A)])
    await run_discord(stage, g, chat, 2)
    assert contents(fake.messages(root["id"])) == [A2]
    assert [r.status for r in fake.request_log if r.route == THREAD_ROUTE] == [201, 400]
    assert await stage.outbox.chat_thread(chat, A) == ChatThread(root["id"], root["id"])


async def test_discord_replies_when_the_thread_was_deleted(stage: Stage, guild: Guild) -> None:
    g, fake = guild, guild.fake
    chat = ChatRef(Platform.DISCORD, g.channel)
    await stage.subscribe(chat, group=True)
    # A subscribed group also gets its pinned schedule: queued here, not at whatever moment the
    # runtime's reminder loop gets to it, so that the counts below are known.
    assert await stage.runtime().remind_once() == 1
    await stage.chats.enqueue([letter(chat, A1, A), letter(chat, A2, A)])
    await run_discord(stage, g, chat, 3)
    schedule, root = fake.messages(g.channel)
    assert "WSIS+20 High-Level Event 2025" in schedule["content"] and root["content"] == A1
    fake.delete_channel(root["id"])  # a moderator deleted the thread
    await stage.chats.enqueue([letter(chat, A3, A)])
    await run_discord(stage, g, chat, 4)  # (the schedule is not queued again)
    _, first, third = fake.messages(g.channel)
    assert third["content"] == A3 and third["message_reference"]["message_id"] == first["id"]
    [subscription] = await stage.chats.subscriptions_of(chat)
    assert subscription.active  # the channel itself is fine


# ------------------------------------------------------------------------------ Matrix


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synapse]:
    async with Synapse(tmp_path_factory.mktemp("synapse")) as server:
        yield server


def matrix(hs: Synapse, bot: RegisteredUser, runtime: ChatRuntime, tmp: Path) -> MatrixAdapter:
    return MatrixAdapter(hs.url, bot.user_id, bot.access_token, replies=runtime.replies_for(Platform.MATRIX),
                         state_file=tmp / "matrix-state.json", sync_timeout_ms=1000)


async def run_matrix(stage: Stage, hs: Synapse, bot: RegisteredUser, chat: ChatRef, count: int) -> None:
    runtime = stage.runtime()
    runtime.add(matrix(hs, bot, runtime, stage.tmp))
    await runtime.start()
    try:
        await eventually(lambda: all_sent(stage, chat, count), timeout=20, what=f"{count} messages")
    finally:
        await runtime.stop()


async def test_matrix_relates_the_later_messages_to_the_first_as_a_thread(hs: Synapse, stage: Stage) -> None:
    tag = uuid.uuid4().hex[:8]
    bot, alice = await hs.register(f"bot-{tag}"), await hs.register(f"alice-{tag}")
    room = await hs.create_room(alice, invite=[bot.user_id])
    await hs.join(bot, room)
    chat = ChatRef(Platform.MATRIX, room)
    await stage.chats.enqueue(letters(chat))
    await run_matrix(stage, hs, bot, chat, 6)

    async def events() -> dict[str, dict[str, Any]]:
        return {e["content"]["body"]: e for e in await hs.messages(alice, room) if e["sender"] == bot.user_id}

    async def in_thread(root: str) -> list[str]:
        """The thread's events as Synapse relates them to its root, oldest first."""
        found = await hs.request("GET", f"/_matrix/client/v1/rooms/{quote(room)}/relations/{quote(root)}/m.thread",
                                 token=alice, params={"dir": "f"})
        return [e["content"]["body"] for e in found["chunk"]]

    seen = await events()
    root_a, root_b = seen[A1]["event_id"], seen[B1]["event_id"]
    assert await in_thread(root_a) == [A2, A3]
    assert await in_thread(root_b) == [B2]
    assert seen[A2]["content"]["m.relates_to"] == {
        "rel_type": "m.thread", "event_id": root_a, "is_falling_back": True, "m.in_reply_to": {"event_id": root_a},
    }
    for text in (A1, LOOSE, B1):
        assert "m.relates_to" not in seen[text]["content"]
    roots = await hs.request("GET", f"/_matrix/client/v1/rooms/{quote(room)}/threads", token=alice)
    assert {e["event_id"] for e in roots["chunk"]} == {root_a, root_b}
    summary = (await hs.get_event(alice, room, root_a))["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2 and summary["latest_event"]["event_id"] == seen[A3]["event_id"]
    assert await stage.outbox.chat_thread(chat, A) == ChatThread(root_a)

    # A new process: the root comes from the database.
    await stage.chats.enqueue([letter(chat, A4, A)])
    await run_matrix(stage, hs, bot, chat, 7)
    assert await in_thread(root_a) == [A2, A3, A4]
