"""The Matrix bot against a real Synapse: invites, "!" commands, announcements, rate limits, restarts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.matrix.bot import MatrixAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutboxStatus, OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.delivery.limits import AdaptiveLimiter
from tests.fakes.synapse import RegisteredUser, Synapse

from .conftest import Stage, eventually, open_stage

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synapse]:
    async with Synapse(tmp_path_factory.mktemp("synapse")) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    s = await open_stage(tmp_path)
    try:
        yield s
    finally:
        await s.store.close()


@pytest_asyncio.fixture(loop_scope="module")
async def people(hs: Synapse) -> tuple[RegisteredUser, RegisteredUser]:
    tag = uuid.uuid4().hex[:8]
    return await hs.register(f"bot-{tag}"), await hs.register(f"alice-{tag}")


def adapter(hs: Synapse, bot: RegisteredUser, runtime: ChatRuntime, tmp: Path,
            allowed: tuple[str, ...] = ()) -> MatrixAdapter:
    return MatrixAdapter(hs.url, bot.user_id, bot.access_token, replies=runtime.replies_for(Platform.MATRIX),
                         state_file=tmp / "matrix-state.json", allowed_servers=allowed, sync_timeout_ms=1000)


async def bot_texts(hs: Synapse, reader: RegisteredUser, room: str, bot: RegisteredUser) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in await hs.messages(reader, room) if e["sender"] == bot.user_id]


async def test_invite_command_reply_and_announcement(hs: Synapse, stage: Stage,
                                                     people: tuple[RegisteredUser, RegisteredUser]) -> None:
    bot, alice = people
    runtime = stage.runtime()
    runtime.add(adapter(hs, bot, runtime, stage.tmp), limiter=AdaptiveLimiter(50))
    await runtime.start()
    try:
        room = await hs.create_room(alice, name="WSIS delegates", invite=[bot.user_id])
        await eventually(lambda: _joined(hs, alice, room, bot), what="the bot joining")
        await hs.send_text(alice, room, "!today")
        await eventually(lambda: _bot_said(hs, alice, room, bot, "High-level segment"), what="the reply")
        [reply] = await bot_texts(hs, alice, room, bot)
        assert reply["content"]["format"] == "org.matrix.custom.html"
        assert "<strong>WSIS+20 High-Level Event 2025</strong>" in reply["content"]["formatted_body"]

        await hs.send_text(alice, room, "!subscribe")
        await eventually(lambda: stage.chats.subscriptions_of(ChatRef(Platform.MATRIX, room)), what="subscription")
        await stage.publish_change(runtime)
        await eventually(lambda: _bot_said(hs, alice, room, bot, "Agenda updated"), what="the announcement")
        texts = [e["content"]["body"] for e in await bot_texts(hs, alice, room, bot)]
        assert sum("Agenda updated" in t for t in texts) == 1
        assert any("09:30–10:30" in t for t in texts if "Agenda updated" in t)
    finally:
        await runtime.stop()


async def test_invites_from_other_servers_are_ignored(hs: Synapse, stage: Stage,
                                                      people: tuple[RegisteredUser, RegisteredUser]) -> None:
    bot, alice = people
    runtime = stage.runtime()
    matrix = adapter(hs, bot, runtime, stage.tmp, allowed=("itu.int",))
    runtime.add(matrix)
    await runtime.start()
    try:
        room = await hs.create_room(alice, invite=[bot.user_id])
        await eventually(lambda: room in matrix.syncing.invited_rooms, what="the invite arriving")
        assert room not in matrix.syncing.rooms
    finally:
        await runtime.stop()


async def test_m_limit_exceeded_is_waited_out_without_duplicates(hs: Synapse, stage: Stage,
                                                                 people: tuple[RegisteredUser, RegisteredUser]) -> None:
    bot, alice = people
    room = await hs.create_room(alice, invite=[bot.user_id])
    await hs.join(bot, room)
    await hs.override_ratelimit(bot, 1, 1)
    chat = ChatRef(Platform.MATRIX, room)
    await stage.chats.enqueue([OutgoingMessage(chat, message(p(f"burst {n}"))) for n in range(5)])
    runtime = stage.runtime()
    # Start far above what the homeserver allows: the limiter must learn it from M_LIMIT_EXCEEDED.
    limiter = AdaptiveLimiter(50)
    runtime.add(adapter(hs, bot, runtime, stage.tmp), limiter=limiter)
    await runtime.start()
    try:
        await eventually(lambda: _count(hs, alice, room, bot, "burst", 5), timeout=30, what="5 messages")
        worker = runtime.engine.workers[Platform.MATRIX]
        assert worker.stats.rate_limited >= 1 and limiter.rate < 50
        bodies = [e["content"]["body"] for e in await bot_texts(hs, alice, room, bot)]
        assert bodies == [f"burst {n}" for n in range(5)]  # in order, each once
    finally:
        await runtime.stop()
        await hs.clear_ratelimit(bot)


async def test_a_restart_sends_what_was_left_once(hs: Synapse, stage: Stage,
                                                  people: tuple[RegisteredUser, RegisteredUser]) -> None:
    bot, alice = people
    room = await hs.create_room(alice, invite=[bot.user_id])
    await hs.join(bot, room)
    chat = ChatRef(Platform.MATRIX, room)
    await stage.chats.enqueue([OutgoingMessage(chat, message(p(f"queued {n}"))) for n in range(3)])
    # The first send happened but its answer was lost (the process died): the row is still pending.
    [first, *_] = [item for item, status, _ in await stage.outbox.rows(chat) if status is OutboxStatus.PENDING]
    runtime = stage.runtime()
    matrix = adapter(hs, bot, runtime, stage.tmp)
    await matrix.start()
    await matrix.send(first)
    await matrix.stop()
    runtime.add(adapter(hs, bot, runtime, stage.tmp))
    await runtime.start()
    try:
        await eventually(lambda: _all_sent(stage, chat), what="the outbox draining")
        bodies = [e["content"]["body"] for e in await bot_texts(hs, alice, room, bot)]
        assert bodies == ["queued 0", "queued 1", "queued 2"]  # the resent txn id was deduplicated
    finally:
        await runtime.stop()


async def _joined(hs: Synapse, reader: RegisteredUser, room: str, bot: RegisteredUser) -> bool:
    state = await hs.room_state(reader, room, "m.room.member", bot.user_id)
    return bool(state and state.get("membership") == "join")


async def _bot_said(hs: Synapse, reader: RegisteredUser, room: str, bot: RegisteredUser, text: str) -> bool:
    return any(text in e["content"].get("body", "") for e in await bot_texts(hs, reader, room, bot))


async def _count(hs: Synapse, reader: RegisteredUser, room: str, bot: RegisteredUser, text: str, n: int) -> bool:
    return sum(text in e["content"].get("body", "") for e in await bot_texts(hs, reader, room, bot)) >= n


async def _all_sent(stage: Stage, chat: ChatRef) -> bool:
    return all(status is OutboxStatus.SENT for _, status, _ in await stage.outbox.rows(chat))
