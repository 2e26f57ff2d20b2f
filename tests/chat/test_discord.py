"""The Discord bot through discord.py against the fake Discord (REST and gateway): slash commands,
buttons, no pings, announcements with nonces, the pinned schedule, closed channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime, command_descriptions
from floorbridge.adapters.discord.bot import DiscordAdapter
from floorbridge.core.chats import ChatRef, Platform
from tests.fakes.discord_api import FakeDiscord

from .conftest import Stage, settings


@dataclass
class Guild:
    fake: FakeDiscord
    guild: str
    channel: str
    moderators_channel: str
    moderator: str
    delegate: str
    runtime: ChatRuntime


@pytest.fixture
async def guild(stage: Stage) -> AsyncIterator[Guild]:
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild("WSIS delegates")
        channel = fake.add_channel(guild_id, "announcements")
        moderators = fake.add_channel(guild_id, "moderators")
        moderator = fake.add_user("chair")
        delegate = fake.add_user("delegate")
        runtime = stage.runtime(settings(moderators=(f"discord:{moderator}",), chats=(f"discord:{moderators}",)))
        runtime.add(DiscordAdapter(fake.token, replies=runtime.replies_for(Platform.DISCORD),
                                   commands=command_descriptions(), api_url=fake.api_url,
                                   gateway_url=fake.gateway_url, guild_ready_timeout=0.05))
        await runtime.start()
        try:
            yield Guild(fake, guild_id, channel, moderators, moderator, delegate, runtime)
        finally:
            await runtime.stop()


def responses(g: Guild, interaction: str) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in g.fake.interaction_responses.get(interaction, []) if r.get("data")]


async def test_slash_commands_are_registered_and_answered_without_pings(guild: Guild) -> None:
    g = guild
    assert {c["name"] for c in g.fake.commands} >= {"today", "agenda", "subscribe", "tz", "ical", "whoami"}
    interaction = g.fake.push_slash_command(g.guild, g.channel, g.delegate, "today")
    await g.fake.wait_for(lambda: responses(g, interaction))
    data = responses(g, interaction)[0]["data"]
    assert "High-level segment" in data["content"]
    assert data["allowed_mentions"] == {"parse": []}

    hostile = g.fake.push_slash_command(g.guild, g.channel, g.delegate, "session",
                                        {"arguments": "@everyone<@123456789012345678>**x**"})
    await g.fake.wait_for(lambda: responses(g, hostile))
    content = responses(g, hostile)[0]["data"]["content"]
    assert "@everyone" not in content and "@\u200beveryone" in content and "\\*\\*x\\*\\*" in content


async def test_a_button_runs_its_command(guild: Guild) -> None:
    g = guild
    first = g.fake.push_slash_command(g.guild, g.channel, g.delegate, "help")
    await g.fake.wait_for(lambda: responses(g, first))
    asked = g.fake.push_slash_command(g.guild, g.channel, g.delegate, "agenda")
    await g.fake.wait_for(lambda: responses(g, asked))
    reply = g.fake.original_response(asked)
    assert reply is not None
    custom_ids = [c["custom_id"] for row in reply["components"] for c in row["components"] if "custom_id" in c]
    assert "fb:agenda 2025-07-09" in custom_ids
    click = g.fake.push_button(g.channel, g.delegate, reply["id"], "fb:agenda 2025-07-09")
    await g.fake.wait_for(lambda: responses(g, click))
    assert "Wednesday, 9 July 2025" in responses(g, click)[0]["data"]["content"]


async def test_only_moderators_subscribe_the_channel_then_publishes_arrive_once_with_a_pin(
    guild: Guild, stage: Stage
) -> None:
    g = guild
    refused = g.fake.push_slash_command(g.guild, g.channel, g.delegate, "subscribe")
    await g.fake.wait_for(lambda: responses(g, refused))
    assert "Only the moderators" in responses(g, refused)[0]["data"]["content"]
    accepted = g.fake.push_slash_command(g.guild, g.channel, g.moderator, "subscribe")
    await g.fake.wait_for(lambda: responses(g, accepted))

    await stage.publish_change(g.runtime, "30")
    await g.fake.wait_for(lambda: g.fake.pins(g.channel) and any(
        "Agenda updated" in m["content"] for m in g.fake.messages(g.channel)), timeout=10)
    [pinned] = g.fake.pins(g.channel)
    await stage.publish_change(g.runtime, "45")
    await g.fake.wait_for(lambda: "09:45" in (g.fake.message(pinned) or {}).get("content", ""), timeout=10)
    assert g.fake.pins(g.channel) == [pinned]  # edited in place
    sent = [c for c in g.fake.created if c["channel_id"] == g.channel and c["source"] == "rest"]
    assert sum("Agenda updated" in c["content"] for c in sent) == 2
    assert all(c["nonce"] and len(c["nonce"]) <= 25 and c["enforce_nonce"] is True for c in sent)
    assert all(c["allowed_mentions"] == {"parse": []} for c in sent)
    assert g.fake.http_429 == 0


async def test_a_closed_channel_stops_its_subscription_and_tells_the_moderators(guild: Guild, stage: Stage) -> None:
    g = guild
    closed = g.fake.add_channel(g.guild, "closed")
    await stage.subscribe(ChatRef(Platform.DISCORD, closed), group=True)
    g.fake.forbid(closed)
    await stage.publish_change(g.runtime)
    await g.fake.wait_for(lambda: g.fake.messages(g.moderators_channel), timeout=10)
    notice = g.fake.messages(g.moderators_channel)[0]["content"]
    assert f"discord:{closed}" in notice and "Missing Access" in notice
    [sub] = await stage.chats.subscriptions_of(ChatRef(Platform.DISCORD, closed))
    assert not sub.active


class SlowReplies:
    """The runtime's own replies, held up as a burst of requests or a slow database would."""

    def __init__(self, inner: object, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def answer(self, incoming):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        return await self.inner.answer(incoming)  # type: ignore[attr-defined]


async def test_an_answer_later_than_discord_allows_is_deferred_then_shown_to_the_asker(stage: Stage) -> None:
    async with FakeDiscord(interaction_ack_deadline=0.6) as fake:  # Discord's is 3 s: scaled down
        guild_id = fake.add_guild("WSIS delegates")
        channel = fake.add_channel(guild_id, "plenary")
        delegate = fake.add_user("delegate")
        runtime = stage.runtime(settings())
        runtime.add(DiscordAdapter(fake.token, replies=SlowReplies(runtime.replies_for(Platform.DISCORD), 1.0),  # type: ignore[arg-type]
                                   commands=command_descriptions(), api_url=fake.api_url,
                                   gateway_url=fake.gateway_url, guild_ready_timeout=0.05, defer_after=0.2))
        await runtime.start()
        try:
            interaction = fake.push_slash_command(guild_id, channel, delegate, "today")
            await fake.wait_for(lambda: "High-level segment" in str(
                (fake.original_response(interaction) or {}).get("content", "")), timeout=10)
            kinds = [r["kind"] for r in fake.interaction_responses[interaction]]
            assert kinds[0] == "callback" and fake.interaction_responses[interaction][0]["type"] == 5  # "thinking"
            original = fake.original_response(interaction)
            assert original is not None and original["flags"] & 64  # ephemeral: only the asker sees it
            assert not any("High-level segment" in m["content"] for m in fake.messages(channel))
        finally:
            await runtime.stop()
