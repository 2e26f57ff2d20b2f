"""The live list of speakers from chat: delegates raise a hand on Telegram and Discord, the chair
runs the list from a moderators' chat, and each speaker hears "you are next", "you have the
floor", the 30-second warning and "time is up" on their own platform."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime, command_descriptions
from floorbridge.adapters.discord.bot import DiscordAdapter
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import Platform
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.speakers import Channel, SpeakerState
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

from .conftest import Stage, eventually, settings

WSIS, HLS = MeetingId("wsis-2025"), SessionId("hls-statements-1")
CHAIR, AMINA, BORIS = 42, 1001, 1002
CHAIRS_ROOM = -100999


@pytest.fixture
async def telegram(stage: Stage) -> AsyncIterator[tuple[FakeTelegram, ChatRuntime]]:
    async with FakeTelegram() as fake:
        runtime = stage.runtime(settings(moderators=(f"telegram:{CHAIR}",), chats=(f"telegram:{CHAIRS_ROOM}",)))
        runtime.add(TelegramAdapter(fake.token, base_url=fake.base_url, poll_timeout=1,
                                    replies=runtime.replies_for(Platform.TELEGRAM)))
        await runtime.start()
        try:
            yield fake, runtime
        finally:
            await runtime.stop()


async def test_delegates_raise_hands_and_the_chair_gives_the_floor(
    telegram: tuple[FakeTelegram, ChatRuntime], stage: Stage
) -> None:
    fake, runtime = telegram
    fake.push_message(AMINA, AMINA, f"/floor {HLS} Kenya", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "number 1"))
    fake.push_message(BORIS, BORIS, f"/floor reply {HLS} Ruritania", first_name="Boris")
    await fake.wait_for(lambda: fake.said(BORIS, "number 2"))
    fake.push_message(AMINA, AMINA, f"/floor {HLS}", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "already have an open request (you are number 1"))

    fake.push_message(BORIS, BORIS, f"/chair next {HLS}", first_name="Boris")
    await fake.wait_for(lambda: fake.said(BORIS, "Only the moderators of wsis-2025"))

    fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair next {HLS}", chat_type="supergroup", title="Chairs")
    await fake.wait_for(lambda: fake.said(CHAIRS_ROOM, "Has the floor:"))
    await fake.wait_for(lambda: fake.said(AMINA, "Your time:"))
    await fake.wait_for(lambda: fake.said(BORIS, "you are next to speak"))
    up_next = next(m for m in fake.messages_in(BORIS) if "you are next to speak" in m)
    assert "https://www.wsis.org/forum" in up_next  # remote speakers get the link to join

    lst = await runtime.floor.view(WSIS, HLS)  # type: ignore[union-attr]
    current = lst.current_speaker()
    assert current is not None and current.participant.name == "Amina"
    assert current.participant.delegation == "Kenya" and current.participant.channel is Channel.TELEGRAM
    audit = await stage.speakers.audit_trail(WSIS, HLS)
    assert [(e.action, e.actor.key, str(e.actor.channel)) for e in audit] == [
        ("request", f"telegram:{AMINA}", "telegram"), ("request", f"telegram:{BORIS}", "telegram"),
        ("next", f"telegram:{CHAIR}", "telegram")]

    fake.push_message(BORIS, BORIS, f"/speakers {HLS}", first_name="Boris")
    await fake.wait_for(lambda: fake.said(BORIS, "← you"))
    assert fake.http_429 == 0


async def test_the_timer_warns_and_says_time_is_up_once(
    telegram: tuple[FakeTelegram, ChatRuntime], stage: Stage
) -> None:
    fake, runtime = telegram
    fake.push_message(AMINA, AMINA, f"/floor {HLS}", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "number 1"))
    fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair time 60 {HLS}", chat_type="supergroup", title="Chairs")
    await fake.wait_for(lambda: fake.said(CHAIRS_ROOM, "Done."))
    fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair next {HLS}", chat_type="supergroup", title="Chairs")
    await fake.wait_for(lambda: fake.said(AMINA, "Your time: 1:00"))
    stage.clock.advance(35)
    await fake.wait_for(lambda: fake.said(AMINA, "30 seconds left"))
    stage.clock.advance(30)
    await fake.wait_for(lambda: fake.said(AMINA, "your time is up"))
    stage.clock.advance(30)
    await eventually(lambda: runtime.engine.workers[Platform.TELEGRAM].idle, what="the outbox drained")
    assert sum("30 seconds left" in m for m in fake.messages_in(AMINA)) == 1
    assert sum("time is up" in m for m in fake.messages_in(AMINA)) == 1


async def test_a_restart_keeps_the_list(stage: Stage, telegram: tuple[FakeTelegram, ChatRuntime]) -> None:
    fake, runtime = telegram
    for user, name in ((AMINA, "Amina"), (BORIS, "Boris")):
        fake.push_message(user, user, f"/floor {HLS}", first_name=name)
        await fake.wait_for(lambda user=user: fake.said(user, "You are on the list"))  # type: ignore[misc]
    fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair next {HLS}", chat_type="supergroup", title="Chairs")
    await fake.wait_for(lambda: fake.said(AMINA, "Your time:"))  # the floor notice, not the ack
    before = await runtime.floor.view(WSIS, HLS)  # type: ignore[union-attr]
    again = stage.runtime(settings())
    after = await again.floor.view(WSIS, HLS)  # type: ignore[union-attr]
    assert after == before
    assert [(s.participant.name, s.state) for s in after.speakers.values()] == [
        ("Amina", SpeakerState.SPEAKING), ("Boris", SpeakerState.WAITING)]


async def test_discord_members_ask_for_the_floor_with_a_slash_command(stage: Stage) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("WSIS delegates")
        channel = fake.add_channel(guild, "plenary")
        chair, delegate = fake.add_user("chair"), fake.add_user("delegate")
        runtime = stage.runtime(settings(moderators=(f"discord:{chair}",)))
        runtime.add(DiscordAdapter(fake.token, replies=runtime.replies_for(Platform.DISCORD),
                                   commands=command_descriptions(), api_url=fake.api_url,
                                   gateway_url=fake.gateway_url, guild_ready_timeout=0.05))
        await runtime.start()
        try:
            assert {"floor", "withdraw", "speakers", "chair"} <= {c["name"] for c in fake.commands}
            asked = fake.push_slash_command(guild, channel, delegate, "floor",
                                            {"arguments": f"{HLS} @everyone Elbonia"})
            await fake.wait_for(lambda: any(r.get("data") for r in fake.interaction_responses.get(asked, [])))
            reply = next(r for r in fake.interaction_responses[asked] if r.get("data"))["data"]
            assert "number 1" in reply["content"] and reply["allowed_mentions"] == {"parse": []}
            nxt = fake.push_slash_command(guild, channel, chair, "chair", {"arguments": f"next {HLS}"})
            await fake.wait_for(lambda: any(r.get("data") for r in fake.interaction_responses.get(nxt, [])))
            await fake.wait_for(lambda: any("you have the floor" in m["content"] for m in fake.messages(channel)),
                                timeout=10)
            notice = next(m for m in fake.messages(channel) if "you have the floor" in m["content"])
            assert "@everyone" not in notice["content"]  # the delegation text cannot ping anyone
        finally:
            await runtime.stop()
