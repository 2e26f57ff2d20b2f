"""The fake Discord driven by the real discord.py 2.7: REST, gateway, interactions, rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord_api import FLAG_EPHEMERAL, FLAG_LOADING, FakeDiscord

MESSAGES_ROUTE = "POST /channels/{channel_id}/messages"


@dataclass
class World:
    fake: FakeDiscord
    guild_id: str
    channel_id: str
    user_id: str


@contextlib.asynccontextmanager
async def serving(**kwargs: Any) -> AsyncIterator[World]:
    kwargs.setdefault("heartbeat_interval_ms", 1000)
    kwargs.setdefault("channel_message_window", 0.5)
    async with FakeDiscord(**kwargs) as fake:
        guild_id = fake.add_guild("Plenary")
        channel_id = fake.add_channel(guild_id, "room-xx")
        user_id = fake.add_user("delegate", "Delegate One")
        with fake.patch_discord():
            yield World(fake, guild_id, channel_id, user_id)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with serving() as world:
        yield world


class Bot(discord.Client):
    def __init__(self, *, intents: discord.Intents | None = None) -> None:
        super().__init__(intents=intents or discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.clicks: list[discord.Interaction] = []
        self.seen: list[discord.Message] = []
        self.errors: list[BaseException] = []

    async def setup_hook(self) -> None:
        self.add_view(AckView(self.clicks))  # persistent: survives restarts, matched by custom_id

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)


class AckView(discord.ui.View):
    def __init__(self, clicks: list[discord.Interaction]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="Acknowledge", custom_id="fb:ack", style=discord.ButtonStyle.primary)
    async def ack(self, interaction: discord.Interaction, button: discord.ui.Button[AckView]) -> None:
        self.clicks.append(interaction)
        await interaction.response.edit_message(content=f"Acknowledged by {interaction.user.name}", view=None)


@contextlib.asynccontextmanager
async def running(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    """login + connect in a task (never Client.run: the test owns the loop), until ready; close after."""
    await client.login(fake.token)
    task = asyncio.create_task(client.connect(), name="discord.py connect")
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            raise AssertionError("connect() ended before READY")
        if ready not in done:
            raise TimeoutError("discord.py did not become ready")
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def text_channel(client: discord.Client, channel_id: str) -> discord.TextChannel:
    channel = client.get_channel(int(channel_id))
    assert isinstance(channel, discord.TextChannel)
    return channel


# --------------------------------------------------------------------------------------------------
# Login, READY, caches


async def test_login_and_ready_fill_the_cache(world: World) -> None:
    fake = world.fake
    second = fake.add_channel(world.guild_id, "room-yy")
    client = Bot()
    async with running(client, fake):
        assert client.user is not None and str(client.user.id) == fake.bot_user_id
        assert str(client.application_id) == fake.application_id
        guild = client.get_guild(int(world.guild_id))
        assert guild is not None and guild.name == "Plenary"
        assert [c.name for c in guild.text_channels] == ["room-xx", "room-yy"]
        assert text_channel(client, second).guild == guild
        assert guild.me is not None and guild.me.guild_permissions.administrator
        # without the members intent only the bot's own member comes in GUILD_CREATE
        assert [m.id for m in guild.members] == [int(fake.bot_user_id)]
        assert guild.member_count == 2
    assert fake.gateway_stats["identify"] == 1
    assert fake.identifies[0]["intents"] == discord.Intents.default().value
    assert fake.requests["GET /users/@me"] == 1
    assert fake.requests["GET /oauth2/applications/@me"] == 1
    assert fake.requests["GET /gateway/bot"] == 0  # a plain Client connects to DEFAULT_GATEWAY
    assert not fake.unhandled
    await fake.wait_for(lambda: not fake.connected)


async def test_members_intent_and_disallowed_privileged_intents() -> None:
    async with serving() as world:
        intents = discord.Intents.default()
        intents.members = True
        client = Bot(intents=intents)
        async with running(client, world.fake):
            guild = client.get_guild(int(world.guild_id))
            assert guild is not None and guild.get_member(int(world.user_id)) is not None
            assert guild.chunked
    async with serving(privileged_intents=0) as world:
        client = Bot(intents=intents)
        await client.login(world.fake.token)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(client.connect(), 10)
        await client.close()


async def test_wrong_token_fails_login(world: World) -> None:
    client = Bot()
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_raw_error_shapes_and_content_type(world: World) -> None:
    fake = world.fake
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_url}/users/@me", headers={"Authorization": "Bot nope"}) as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        auth = {"Authorization": f"Bot {fake.token}"}
        async with session.get(f"{fake.api_url}/users/@me", headers=auth) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == fake.bot_user_id
        async with session.get(f"{fake.api_url}/channels/42/messages/7", headers=auth) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "Unknown Channel", "code": 10003}
        async with session.get(f"{fake.api_url}/nowhere", headers=auth) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        async with session.post(
            f"{fake.api_url}/channels/{world.channel_id}/messages", headers=auth, json={"content": ""}
        ) as resp:
            assert resp.status == 400
            assert await resp.json() == {"message": "Cannot send an empty message", "code": 50006}
        async with session.get(f"{fake.api_url}/gateway/bot", headers=auth) as resp:
            assert (await resp.json())["url"] == fake.gateway_url


# --------------------------------------------------------------------------------------------------
# Application commands and interactions


def add_commands(client: Bot, calls: list[discord.Interaction], results: list[Any]) -> None:
    @client.tree.command(description="Show the agenda of a room")
    @app_commands.describe(room="Room name", item="Agenda item")
    async def agenda(
        interaction: discord.Interaction, room: str, item: int = 1, delegate: discord.Member | None = None
    ) -> None:
        calls.append(interaction)
        results.append((room, item, delegate))
        await interaction.response.send_message(f"Agenda of {room}, item {item}", ephemeral=True)

    @client.tree.command(description="Slow answer")
    async def slow(interaction: discord.Interaction) -> None:
        calls.append(interaction)
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("Here it is")
        await interaction.edit_original_response(content="Here it is (edited)")

    @client.tree.command(description="Answers too late")
    async def late(interaction: discord.Interaction) -> None:
        calls.append(interaction)
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("too late")
        except discord.HTTPException as exc:
            results.append(exc)

    group = app_commands.Group(name="speakers", description="Speakers list")

    @group.command(name="add", description="Add a speaker")
    async def add(interaction: discord.Interaction, name: str) -> None:
        calls.append(interaction)
        await interaction.response.send_message(f"Added {name}")

    client.tree.add_command(group)


async def test_tree_sync_registers_commands(world: World) -> None:
    fake = world.fake
    client = Bot()
    add_commands(client, [], [])
    async with running(client, fake):
        synced = await client.tree.sync()
        assert sorted(c.name for c in synced) == ["agenda", "late", "slow", "speakers"]
        client.tree.copy_global_to(guild=discord.Object(int(world.guild_id)))
        await client.tree.sync(guild=discord.Object(int(world.guild_id)))
        fetched = await client.tree.fetch_commands()
    assert {c["name"] for c in fake.commands} == {"agenda", "late", "slow", "speakers"}
    assert {c.id for c in fetched} == {int(c["id"]) for c in fake.commands}
    agenda = next(c for c in fake.commands if c["name"] == "agenda")
    assert [(o["name"], o["type"], o.get("required", False)) for o in agenda["options"]] == [
        ("room", 3, True),
        ("item", 4, False),
        ("delegate", 6, False),
    ]
    assert {c["name"] for c in fake.guild_commands(world.guild_id)} == {"agenda", "late", "slow", "speakers"}
    assert fake.requests["PUT /applications/{application_id}/commands"] == 1
    assert fake.requests["PUT /applications/{application_id}/guilds/{guild_id}/commands"] == 1


async def test_slash_command_gets_an_ephemeral_answer(world: World) -> None:
    fake = world.fake
    client = Bot()
    calls: list[discord.Interaction] = []
    results: list[Any] = []
    add_commands(client, calls, results)
    async with running(client, fake):
        await client.tree.sync()
        with pytest.raises(KeyError):
            fake.push_slash_command(world.guild_id, world.channel_id, world.user_id, "unknown", {})
        interaction_id = fake.push_slash_command(
            world.guild_id,
            world.channel_id,
            world.user_id,
            "agenda",
            {"room": "XX", "item": "3", "delegate": world.user_id},
        )
        responses = await fake.wait_for(lambda: fake.interaction_responses[interaction_id])
    [response] = responses
    assert response["kind"] == "callback" and response["type"] == 4
    assert response["data"]["content"] == "Agenda of XX, item 3"
    assert response["data"]["flags"] & FLAG_EPHEMERAL
    room, item, delegate = results[0]
    assert (room, item) == ("XX", 3)
    assert isinstance(delegate, discord.Member) and str(delegate.id) == world.user_id
    interaction = calls[0]
    assert str(interaction.id) == interaction_id and interaction.guild_id == int(world.guild_id)
    assert interaction.channel is not None and str(interaction.channel.id) == world.channel_id
    assert interaction.locale is discord.Locale.american_english
    assert fake.messages(world.channel_id) == []  # ephemeral: not in the channel
    original = fake.original_response(interaction_id)
    assert original is not None and original["content"] == "Agenda of XX, item 3"


async def test_defer_followup_edit_and_double_ack(world: World) -> None:
    fake = world.fake
    client = Bot()
    calls: list[discord.Interaction] = []
    add_commands(client, calls, [])
    async with running(client, fake):
        await client.tree.sync()
        interaction_id = fake.push_slash_command(world.guild_id, world.channel_id, world.user_id, "slow", {})
        await fake.wait_for(lambda: len(fake.interaction_responses[interaction_id]) == 3)
        # Discord refuses a second callback for the same interaction
        interaction = calls[0]
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{fake.api_url}/interactions/{interaction.id}/{interaction.token}/callback",
                json={"type": 4, "data": {"content": "again"}},
            ) as resp,
        ):
            assert resp.status == 400
            assert await resp.json() == {"message": "Interaction has already been acknowledged.", "code": 40060}
        sub_id = fake.push_slash_command(
            world.guild_id, world.channel_id, world.user_id, "speakers add", {"name": "Ana"}
        )
        await fake.wait_for(lambda: fake.interaction_responses[sub_id])
    kinds = [(r["kind"], r.get("type")) for r in fake.interaction_responses[interaction_id]]
    assert kinds == [("callback", 5), ("followup", None), ("edit_original", None)]
    [message] = [m for m in fake.messages(world.channel_id) if m["interaction_metadata"]["id"] == interaction_id]
    assert message["content"] == "Here it is (edited)"  # the first followup after a defer became the original
    assert not message["flags"] & FLAG_LOADING and message["type"] == 20
    assert fake.interaction_responses[sub_id][0]["data"]["content"] == "Added Ana"


async def test_callback_after_the_deadline_is_unknown_interaction() -> None:
    async with serving(interaction_ack_deadline=0.2) as world:
        client = Bot()
        results: list[Any] = []
        add_commands(client, [], results)
        async with running(client, world.fake):
            await client.tree.sync()
            world.fake.push_slash_command(world.guild_id, world.channel_id, world.user_id, "late", {})
            await world.fake.wait_for(lambda: results)
        [error] = results
        assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_slash_command_in_dm(world: World) -> None:
    fake = world.fake
    client = Bot()
    calls: list[discord.Interaction] = []
    add_commands(client, calls, [])
    async with running(client, fake):
        await client.tree.sync()
        interaction_id = fake.push_slash_command(None, None, world.user_id, "agenda", {"room": "XX"})
        await fake.wait_for(lambda: fake.interaction_responses[interaction_id])
    interaction = calls[0]
    assert interaction.guild_id is None and isinstance(interaction.user, discord.User)
    assert isinstance(interaction.channel, discord.DMChannel)
    assert str(interaction.channel.id) == fake.dm_channel_for(world.user_id)


async def test_button_click_reaches_a_persistent_view(world: World) -> None:
    fake = world.fake
    buttons = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Acknowledge", "custom_id": "fb:ack"}]}]
    # a message the bot sent before it restarted: only the persistent view (by custom_id) can answer
    old_id = fake.add_message(world.channel_id, fake.bot_user_id, "Room XX moved to 11:00", components=buttons)
    client = Bot()
    async with running(client, fake):
        with pytest.raises(ValueError):
            fake.push_button(world.channel_id, world.user_id, old_id, "fb:nope")
        interaction_id = fake.push_button(world.channel_id, world.user_id, old_id, "fb:ack")
        await fake.wait_for(lambda: fake.interaction_responses[interaction_id])
        # a message sent now with the view attached
        sent = await text_channel(client, world.channel_id).send("Please acknowledge", view=AckView(client.clicks))
        second = fake.push_button(world.channel_id, world.user_id, str(sent.id), "fb:ack")
        await fake.wait_for(lambda: fake.interaction_responses[second])
    assert [str(i.id) for i in client.clicks] == [interaction_id, second]
    assert fake.interaction_responses[interaction_id][0]["type"] == 7
    old = fake.message(old_id)
    assert old is not None and old["content"] == "Acknowledged by delegate" and old["components"] == []
    assert old["edited_timestamp"] is not None
    new = fake.message(str(sent.id))
    assert new is not None and new["content"] == "Acknowledged by delegate"


# --------------------------------------------------------------------------------------------------
# Messages


async def test_send_with_allowed_mentions_and_nonce(world: World) -> None:
    fake = world.fake
    other = fake.add_channel(world.guild_id, "room-yy")
    client = Bot()
    async with running(client, fake):
        channel = text_channel(client, world.channel_id)
        none = discord.AllowedMentions.none()
        first = await channel.send(f"<@{world.user_id}> Room XX opens", allowed_mentions=none, nonce="fb-42")
        again = await channel.send(f"<@{world.user_id}> Room XX opens", allowed_mentions=none, nonce="fb-42")
        pinged = await channel.send(f"<@{world.user_id}> you have the floor")
        plain = await channel.send("no nonce given")
        elsewhere = await text_channel(client, other).send("same nonce, other channel", nonce="fb-42")
        await first.delete()
        with pytest.raises(discord.NotFound) as deleted:
            await channel.send("after delete", nonce="fb-42")
    assert first.id == again.id and first.id != elsewhere.id
    assert fake.nonce_hits == 2
    assert [m["content"] for m in fake.messages(world.channel_id)] == [pinged.content, "no nonce given"]
    assert deleted.value.code == 10008
    record = fake.created[0]
    assert record["channel_id"] == world.channel_id and record["nonce"] == "fb-42"
    assert record["enforce_nonce"] is True and record["allowed_mentions"] == {"parse": []}
    assert record["payload"]["content"] == f"<@{world.user_id}> Room XX opens"
    assert first.mentions == []
    assert [u.id for u in pinged.mentions] == [int(world.user_id)]
    # discord.py 2.7 always sends a nonce (a random 64-bit one when none is given) with enforce_nonce
    assert fake.created[2]["enforce_nonce"] is True and plain.nonce is not None


async def test_message_limits_are_enforced(world: World) -> None:
    fake = world.fake
    client = Bot()
    async with running(client, fake):
        channel = text_channel(client, world.channel_id)
        await channel.send("x" * 2000)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        with pytest.raises(discord.HTTPException) as title:
            await channel.send(embed=discord.Embed(title="t" * 257))
        fields = discord.Embed(title="Agenda")
        for i in range(26):
            fields.add_field(name=f"Item {i}", value="v")
        with pytest.raises(discord.HTTPException) as too_many_fields:
            await channel.send(embed=fields)
        with pytest.raises(discord.HTTPException) as total:
            await channel.send(embeds=[discord.Embed(description="d" * 4096), discord.Embed(description="d" * 2000)])
        with pytest.raises(ValueError):
            await channel.send(embeds=[discord.Embed(title="e")] * 11)  # refused by discord.py itself
        ok = discord.Embed(title="t" * 256, description="d" * 4096)
        ok.set_footer(text="f" * 1000)
        await channel.send(embed=ok)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    assert too_long.value.text == "Invalid Form Body\nIn content: Must be 2000 or fewer in length."
    assert "In embeds.0.title: Must be 256 or fewer in length." in title.value.text
    assert "In embeds.0.fields: Must be 25 or fewer in length." in too_many_fields.value.text
    assert "Embed size exceeds maximum size of 6000" in total.value.text
    assert len(fake.messages(world.channel_id)) == 2


async def test_forbidden_unknown_and_closed_dms(world: World) -> None:
    fake = world.fake
    client = Bot()
    gone = fake.add_channel(world.guild_id, "room-gone")
    async with running(client, fake):
        fake.forbid(world.channel_id)
        with pytest.raises(discord.Forbidden) as forbidden:
            await text_channel(client, world.channel_id).send("hello")
        with pytest.raises(discord.NotFound) as unknown:
            await client.get_partial_messageable(1234567890).send("hello")
        fake.delete_channel(gone)
        with pytest.raises(discord.NotFound) as deleted:
            await client.get_partial_messageable(int(gone)).send("hello")
        user = await client.fetch_user(int(world.user_id))
        fake.close_dms(world.user_id)
        with pytest.raises(discord.Forbidden) as dms:
            await user.send("hello")
        fake.open_dms(world.user_id)
        dm = await user.send("hello again")
    assert (forbidden.value.status, forbidden.value.code, forbidden.value.text) == (403, 50001, "Missing Access")
    assert (unknown.value.status, unknown.value.code, unknown.value.text) == (404, 10003, "Unknown Channel")
    assert deleted.value.code == 10003
    assert (dms.value.code, dms.value.text) == (50007, "Cannot send messages to this user")
    assert [m["content"] for m in fake.messages(fake.dm_channel_for(world.user_id))] == ["hello again"]
    assert str(dm.channel.id) == fake.dm_channel_for(world.user_id)


async def test_edit_pin_fetch_reply_file_delete(world: World) -> None:
    fake = world.fake
    client = Bot()
    async with running(client, fake):
        channel = text_channel(client, world.channel_id)
        message = await channel.send("Room XX at 10:00")
        await message.edit(content="Room XX at 11:00")
        fetched = await channel.fetch_message(message.id)
        await message.pin()
        pins = [m async for m in channel.pins()]
        reply = await message.reply("See you there", mention_author=False)
        with_file = await channel.send("Agenda attached", file=discord.File(io.BytesIO(b"1. Opening"), "agenda.txt"))
        data = await with_file.attachments[0].read()
        await message.unpin()
        await message.delete()
    assert fetched.content == "Room XX at 11:00" and fetched.edited_at is not None
    assert [p.id for p in pins] == [message.id]
    assert fake.pins(world.channel_id) == []
    assert fake.requests["PUT /channels/{channel_id}/messages/pins/{message_id}"] == 1
    assert reply.reference is not None and reply.reference.message_id == message.id
    assert data == b"1. Opening" and with_file.attachments[0].filename == "agenda.txt"
    assert [m["content"] for m in fake.messages(world.channel_id)] == ["See you there", "Agenda attached"]
    assert [e["payload"]["content"] for e in fake.edits] == ["Room XX at 11:00"]


async def test_message_create_respects_the_message_content_intent(world: World) -> None:
    fake = world.fake
    client = Bot()
    async with running(client, fake):
        fake.push_message(world.channel_id, world.user_id, "plain words")
        fake.push_message(world.channel_id, world.user_id, f"<@{fake.bot_user_id}> agenda please")
        await fake.wait_for(lambda: len([m for m in client.seen if m.author.id != client.user.id]) == 2)  # type: ignore[union-attr]
    assert [m.content for m in client.seen] == ["", f"<@{fake.bot_user_id}> agenda please"]
    assert isinstance(client.seen[0].author, discord.Member)
    intents = discord.Intents.default()
    intents.message_content = True
    client = Bot(intents=intents)
    async with running(client, fake):
        fake.push_message(world.channel_id, world.user_id, "plain words")
        await fake.wait_for(lambda: client.seen)
    assert client.seen[0].content == "plain words"


# --------------------------------------------------------------------------------------------------
# Rate limits


async def test_channel_bucket_discord_py_waits_instead_of_429(world: World) -> None:
    fake = world.fake  # 5 per 0.5 s per channel
    other_id = fake.add_channel(world.guild_id, "room-yy")
    client = Bot()
    async with running(client, fake):
        channel = text_channel(client, world.channel_id)
        started = time.monotonic()
        for i in range(7):
            await channel.send(f"sequential {i}")
        sequential = time.monotonic() - started
        fake.reset_limits()
        await asyncio.sleep(0.6)
        other = text_channel(client, other_id)
        started = time.monotonic()
        await asyncio.gather(*(other.send(f"concurrent {i}") for i in range(7)))
        concurrent = time.monotonic() - started
    assert len(fake.messages(world.channel_id)) == 7 and len(fake.messages(str(other.id))) == 7
    assert fake.http_429 == 0  # discord.py reads X-RateLimit-* and sleeps pre-emptively
    assert sequential >= 0.45 and concurrent >= 0.45
    created = [c["time"] for c in fake.created if c["channel_id"] == world.channel_id]
    assert created[5] - created[0] >= 0.45  # the 6th waited for the window to reset
    assert fake.peak_requests(0.45, route=MESSAGES_ROUTE, channel_id=world.channel_id) <= 5


async def test_channel_bucket_headers_and_429_for_a_client_that_ignores_them(world: World) -> None:
    fake = world.fake
    url = f"{fake.api_url}/channels/{world.channel_id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    answers = []
    async with aiohttp.ClientSession() as session:
        for i in range(6):
            async with session.post(url, headers=headers, json={"content": f"m{i}"}) as resp:
                answers.append((resp.status, dict(resp.headers), await resp.json()))
    statuses = [a[0] for a in answers]
    assert statuses == [200, 200, 200, 200, 200, 429]
    assert [a[1]["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert len({a[1]["X-RateLimit-Bucket"] for a in answers}) == 1
    assert all(a[1]["X-RateLimit-Limit"] == "5" and float(a[1]["X-RateLimit-Reset-After"]) <= 0.5 for a in answers)
    assert abs(float(answers[0][1]["X-RateLimit-Reset"]) - time.time()) < 1
    _, limited, body = answers[5]
    assert limited["X-RateLimit-Scope"] == "user" and limited["Via"] == "1.1 google" and "Retry-After" in limited
    assert limited["Content-Type"] == "application/json"
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 0.5
    assert len(fake.messages(world.channel_id)) == 5
    assert fake.http_429 == fake.http_429_route == 1


async def test_global_limit_sixty_channels_at_once() -> None:
    async with serving(global_per_second=50) as world:
        fake = world.fake
        channel_ids = [world.channel_id] + [fake.add_channel(world.guild_id, f"room-{i}") for i in range(59)]
        client = Bot()
        async with running(client, fake):
            await asyncio.sleep(1.0)  # let login's requests leave the window
            await asyncio.gather(*(text_channel(client, c).send("Plenary resumes at 15:00") for c in channel_ids))
        assert all(len(fake.messages(c)) == 1 for c in channel_ids)
        # discord.py cannot know the global limit in advance: the requests over it get a global 429, it
        # sleeps retry_after (blocking new requests meanwhile) and retries
        # 60 - 50 = 10 in practice (all 60 leave before the first answer comes back); fewer on a slow machine
        assert 1 <= fake.http_429_global <= 10 and fake.http_429_route == 0
        limited = [r for r in fake.request_log if r.rate_limit_scope == "global"]
        assert all(r.route == MESSAGES_ROUTE for r in limited)
        assert fake.peak_requests(1.0) <= 50


# --------------------------------------------------------------------------------------------------
# Gateway


async def test_gateway_kill_resumes_and_replays(world: World) -> None:
    fake = world.fake
    client = Bot()
    calls: list[discord.Interaction] = []
    add_commands(client, calls, [])
    resumed = asyncio.Event()

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with running(client, fake):
        await client.tree.sync()
        await fake.kill_gateway()
        # pushed while the bot is away: replayed after RESUME
        missed = fake.push_slash_command(world.guild_id, world.channel_id, world.user_id, "agenda", {"room": "XX"})
        await asyncio.wait_for(resumed.wait(), 5)
        await fake.wait_for(lambda: fake.interaction_responses[missed])
        after = fake.push_slash_command(world.guild_id, world.channel_id, world.user_id, "agenda", {"room": "YY"})
        await fake.wait_for(lambda: fake.interaction_responses[after])
        fake.request_reconnect()  # op 7: discord.py closes and resumes again
        await fake.wait_for(lambda: fake.gateway_stats["resume"] == 2)
    assert fake.gateway_stats["identify"] == 1
    assert fake.gateway_stats["connections_to_resume_url"] == 2
    assert fake.gateway_stats["replayed"] >= 1
    assert [str(c.id) for c in calls] == [missed, after]


class QuickReidentifyBot(Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py's default sleeps 5 s before every IDENTIFY but the first


async def test_invalid_session_makes_discord_py_identify_again(world: World) -> None:
    fake = world.fake
    client = QuickReidentifyBot()
    async with running(client, fake):
        fake.invalidate_session(resumable=False)
        await fake.wait_for(lambda: fake.gateway_stats["identify"] == 2 and fake.connected, timeout=10)
        await text_channel(client, world.channel_id).send("still here")
    assert [m["content"] for m in fake.messages(world.channel_id)] == ["still here"]
