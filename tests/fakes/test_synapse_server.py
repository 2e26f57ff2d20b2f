"""The real Synapse of tests/fakes/synapse.py, driven by matrix-nio's AsyncClient as the bot drives it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomMessageText,
    RoomPutStateError,
    RoomPutStateResponse,
    RoomSendError,
    RoomSendResponse,
    SyncResponse,
)

from tests.fakes.synapse import MatrixHTTPError, RegisteredUser, Synapse, SynapseStartError

# matrix-synapse is in the test extras: a machine without it fails here rather than skipping.
assert Synapse.available(), "matrix-synapse is not installed: run `make test`, which installs the test extras"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synapse]:
    async with Synapse(tmp_path_factory.mktemp("synapse")) as server:
        yield server


@dataclass(frozen=True)
class Pair:
    bot: RegisteredUser
    alice: RegisteredUser


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest_asyncio.fixture(loop_scope="module")
async def pair(hs: Synapse, suffix: str) -> Pair:
    """Fresh users for each test, so tests sharing the module's server don't see each other."""
    bot = await hs.register(f"bot-{suffix}", displayname="Floorbridge")
    alice = await hs.register(f"alice-{suffix}", displayname="Alice")
    return Pair(bot=bot, alice=alice)


@asynccontextmanager
async def nio_client(hs: Synapse, user: RegisteredUser, **config: Any) -> AsyncIterator[AsyncClient]:
    """An AsyncClient restored from a stored login, as the bot starts after a restart."""
    client = AsyncClient(hs.url, user.user_id, device_id=user.device_id, config=AsyncClientConfig(**config))
    client.restore_login(user.user_id, user.device_id, user.access_token)
    try:
        yield client
    finally:
        await client.close()


async def shared_room(hs: Synapse, pair: Pair, name: str = "Plenary") -> str:
    room_id = await hs.create_room(pair.alice, name=name, invite=[pair.bot])
    await hs.join(pair.bot, room_id)
    return room_id


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


# --------------------------------------------------------------------------------------- server


async def test_server_answers_and_registers_users(hs: Synapse, pair: Pair) -> None:
    assert hs.url == f"http://127.0.0.1:{hs.port}"
    assert hs.server_name == "localhost"
    assert pair.bot.user_id.startswith("@bot-") and pair.bot.user_id.endswith(":localhost")
    assert pair.bot.device_id and pair.bot.access_token
    versions = await hs.request("GET", "/_matrix/client/versions")
    assert "v1.1" in versions["versions"]
    whoami = await hs.request("GET", "/_matrix/client/v3/account/whoami", token=pair.bot)
    assert whoami["user_id"] == pair.bot.user_id
    assert whoami["device_id"] == pair.bot.device_id
    assert hs.admin.user_id == "@fixture-admin:localhost"
    assert hs.startup_seconds is not None and hs.startup_seconds < 60
    rss = hs.rss_bytes()
    assert rss is not None and rss < 1024 * 2**20


async def test_registration_is_closed_and_federation_is_not_served(hs: Synapse) -> None:
    with pytest.raises(MatrixHTTPError) as exc_info:
        await hs.request("POST", "/_matrix/client/v3/register", json_body={"username": "x", "password": "y"})
    assert exc_info.value.status == 403
    with pytest.raises(MatrixHTTPError) as not_found:
        await hs.request("GET", "/_matrix/federation/v1/version")
    assert not_found.value.status == 404


async def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    server = Synapse(tmp_path / "broken", extra_config={"database": {"name": "nosuchdb", "args": {}}})
    with pytest.raises(SynapseStartError, match="exited with code") as exc_info:
        await server.start()
    assert "nosuchdb" in str(exc_info.value)  # the log's tail is in the message
    assert not server.running


# --------------------------------------------------------------------------------------- rooms


async def test_bot_gets_the_invite_by_sync_joins_and_sends(hs: Synapse, pair: Pair) -> None:
    async with nio_client(hs, pair.bot) as bot:
        first = await bot.sync(timeout=0)
        assert isinstance(first, SyncResponse)

        room_id = await hs.create_room(pair.alice, name="Plenary", invite=[pair.bot])

        deadline = time.monotonic() + 20
        while room_id not in bot.invited_rooms:
            assert time.monotonic() < deadline, "the invite never arrived through sync"
            resp = await bot.sync(timeout=5_000)
            assert isinstance(resp, SyncResponse), resp
        assert bot.invited_rooms[room_id].inviter == pair.alice.user_id

        joined = await bot.join(room_id)
        assert isinstance(joined, JoinResponse), joined
        assert joined.room_id == room_id

        sent = await bot.room_send(room_id, "m.room.message", text("Session resumes at 15:00"), tx_id="fb-1")
        assert isinstance(sent, RoomSendResponse), sent

    messages = await hs.messages(pair.alice, room_id)
    assert [(m["sender"], m["event_id"], m["content"]["body"]) for m in messages] == [
        (pair.bot.user_id, sent.event_id, "Session resumes at 15:00")
    ]
    members = await hs.request("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members", token=pair.alice)
    assert set(members["joined"]) == {pair.alice.user_id, pair.bot.user_id}


async def test_same_tx_id_from_the_same_device_makes_one_event(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    content = text("Agenda item 4 moved to Thursday")

    async with nio_client(hs, pair.bot) as bot:
        first = await bot.room_send(room_id, "m.room.message", content, tx_id="outbox-42")
        again = await bot.room_send(room_id, "m.room.message", content, tx_id="outbox-42")
    assert isinstance(first, RoomSendResponse) and isinstance(again, RoomSendResponse)
    assert again.event_id == first.event_id

    # The bot restarted: a new client restored with the stored access token and device id.
    async with nio_client(hs, pair.bot) as restarted:
        after_restart = await restarted.room_send(room_id, "m.room.message", content, tx_id="outbox-42")
    assert isinstance(after_restart, RoomSendResponse)
    assert after_restart.event_id == first.event_id

    # A new password login on the same device id: transaction ids are scoped to the device
    # (MSC3970), not to the access token.
    relogged = await hs.login(pair.bot, device_id=pair.bot.device_id)
    assert relogged.access_token != pair.bot.access_token
    async with nio_client(hs, relogged) as bot:
        same_device = await bot.room_send(room_id, "m.room.message", content, tx_id="outbox-42")
    assert isinstance(same_device, RoomSendResponse)
    assert same_device.event_id == first.event_id

    assert [m["event_id"] for m in await hs.messages(pair.alice, room_id)] == [first.event_id]

    # Another device of the same user: a new transaction, so a second event.
    other_device = await hs.login(pair.bot)
    assert other_device.device_id != pair.bot.device_id
    async with nio_client(hs, other_device) as bot:
        duplicate = await bot.room_send(room_id, "m.room.message", content, tx_id="outbox-42")
    assert isinstance(duplicate, RoomSendResponse)
    assert duplicate.event_id != first.event_id
    assert len(await hs.messages(pair.alice, room_id)) == 2


async def test_tx_id_survives_a_homeserver_restart(tmp_path: Path) -> None:
    async with Synapse(tmp_path / "synapse") as server:
        bot = await server.register("bot")
        alice = await server.register("alice")
        room_id = await server.create_room(alice, invite=[bot])
        await server.join(bot, room_id)
        async with nio_client(server, bot) as client:
            first = await client.room_send(room_id, "m.room.message", text("before restart"), tx_id="t-1")
        assert isinstance(first, RoomSendResponse)

        await server.stop()
        await server.start()

        async with nio_client(server, bot) as client:
            again = await client.room_send(room_id, "m.room.message", text("before restart"), tx_id="t-1")
        assert isinstance(again, RoomSendResponse)
        assert again.event_id == first.event_id
        assert len(await server.messages(alice, room_id)) == 1


async def test_formatted_body_arrives_as_sent(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    content = text(
        "Plenary, Room XIX: 10:00–13:00 — *interpretation* in 6 languages",
        format="org.matrix.custom.html",
        formatted_body=(
            "<b>Plenary</b>, Room XIX: 10:00–13:00 — <em>interpretation</em> in 6 languages<br>"
            '<a href="https://example.org/agenda?a=1&amp;b=2">Agenda</a><ul><li>Item 1</li><li>Item 2</li></ul>'
            "<code>&lt;id&gt;</code>"
        ),
    )
    async with nio_client(hs, pair.bot) as bot:
        sent = await bot.room_send(room_id, "m.room.message", content, tx_id="html-1")
    assert isinstance(sent, RoomSendResponse)

    [message] = await hs.messages(pair.alice, room_id)
    assert message["content"] == content

    # The other side, parsed by nio as a client sees it.
    async with nio_client(hs, pair.alice) as alice:
        resp = await alice.sync(timeout=0)
        assert isinstance(resp, SyncResponse)
        events = [e for e in resp.rooms.join[room_id].timeline.events if isinstance(e, RoomMessageText)]
    [event] = events
    assert event.event_id == sent.event_id
    assert event.format == "org.matrix.custom.html"
    assert event.formatted_body == content["formatted_body"]
    assert event.body == content["body"]


# --------------------------------------------------------------------------------------- rate limits


async def test_rate_limit_without_nio_retries_is_a_room_send_error(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    await hs.override_ratelimit(pair.bot, 1, 1)
    # The join above counted against the same per-user limiter (Synapse limits membership and
    # state events with the message limiter too): let the one-message burst refill.
    await asyncio.sleep(1.2)
    try:
        # max_limit_exceeded=0: nio hands back the first 429 instead of sleeping and retrying.
        async with nio_client(hs, pair.bot, max_limit_exceeded=0) as bot:
            results = [
                await bot.room_send(room_id, "m.room.message", text(f"burst {i}"), tx_id=f"burst-{i}") for i in range(5)
            ]
            errors = [r for r in results if isinstance(r, RoomSendError)]
            assert isinstance(results[0], RoomSendResponse), results[0]
            assert errors, results
            for error in errors:
                assert error.status_code == "M_LIMIT_EXCEEDED"
                assert error.retry_after_ms is not None and 0 < error.retry_after_ms <= 1_000
                assert error.transport_response is not None and error.transport_response.status == 429

            # Waiting as told and sending the refused message again, same tx_id, goes through.
            last = errors[-1]
            assert last.retry_after_ms is not None
            await asyncio.sleep(last.retry_after_ms / 1000 + 0.05)
            index = results.index(last)
            retried = await bot.room_send(room_id, "m.room.message", text(f"burst {index}"), tx_id=f"burst-{index}")
            assert isinstance(retried, RoomSendResponse), retried
    finally:
        await hs.clear_ratelimit(pair.bot)

    sent = [r.event_id for r in results if isinstance(r, RoomSendResponse)] + [retried.event_id]
    assert [m["event_id"] for m in await hs.messages(pair.alice, room_id)] == sent


async def test_rate_limit_with_nio_defaults_is_slept_through(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    limited: list[RoomSendError] = []

    async def on_error(resp: Any) -> None:
        limited.append(resp)

    await hs.override_ratelimit(pair.bot, 1, 1)
    try:
        # Default AsyncClientConfig: max_limit_exceeded=None, so _send() sleeps retry_after_ms
        # and sends again until it goes through; every 429 is passed to the response callbacks.
        async with nio_client(hs, pair.bot) as bot:
            bot.add_response_callback(on_error, RoomSendError)
            began = time.monotonic()
            results = [
                await bot.room_send(room_id, "m.room.message", text(f"slow {i}"), tx_id=f"slow-{i}") for i in range(3)
            ]
            elapsed = time.monotonic() - began
    finally:
        await hs.clear_ratelimit(pair.bot)

    assert all(isinstance(r, RoomSendResponse) for r in results), results
    assert limited, "Synapse never answered 429"
    assert all(e.status_code == "M_LIMIT_EXCEEDED" and e.retry_after_ms for e in limited)
    assert elapsed >= 1.0  # about one second per message after the first
    assert len(await hs.messages(pair.alice, room_id)) == 3


async def test_clearing_the_override_lifts_the_limit(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    await hs.override_ratelimit(pair.bot, 1, 1)
    await hs.clear_ratelimit(pair.bot)
    async with nio_client(hs, pair.bot, max_limit_exceeded=0) as bot:
        results = await asyncio.gather(
            *(bot.room_send(room_id, "m.room.message", text(f"fast {i}"), tx_id=f"fast-{i}") for i in range(20))
        )
    assert all(isinstance(r, RoomSendResponse) for r in results), results


async def test_override_ratelimit_takes_whole_numbers_only(hs: Synapse, pair: Pair) -> None:
    with pytest.raises(ValueError, match="whole number"):
        await hs.override_ratelimit(pair.bot, 0.5, 1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- pins and edits


async def test_pinning_by_state_event(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    assert await hs.room_state(pair.alice, room_id, "m.room.pinned_events") is None

    async with nio_client(hs, pair.bot) as bot:
        sent = await bot.room_send(room_id, "m.room.message", text("Pin me"), tx_id="pin-1")
        assert isinstance(sent, RoomSendResponse)

        # Invited members have power level 0 and pinning needs the state default (50).
        refused = await bot.room_put_state(room_id, "m.room.pinned_events", {"pinned": [sent.event_id]})
        assert isinstance(refused, RoomPutStateError)
        assert refused.status_code == "M_FORBIDDEN"

        await hs.set_power_level(pair.alice, room_id, pair.bot, 50)
        pinned = await bot.room_put_state(room_id, "m.room.pinned_events", {"pinned": [sent.event_id]})
        assert isinstance(pinned, RoomPutStateResponse), pinned
        assert await hs.room_state(pair.alice, room_id, "m.room.pinned_events") == {"pinned": [sent.event_id]}

        unpinned = await bot.room_put_state(room_id, "m.room.pinned_events", {"pinned": []})
        assert isinstance(unpinned, RoomPutStateResponse)
    assert await hs.room_state(pair.alice, room_id, "m.room.pinned_events") == {"pinned": []}


async def test_edit_with_m_replace(hs: Synapse, pair: Pair) -> None:
    room_id = await shared_room(hs, pair)
    async with nio_client(hs, pair.bot) as bot:
        original = await bot.room_send(room_id, "m.room.message", text("Starts at 10:00"), tx_id="edit-0")
        assert isinstance(original, RoomSendResponse)
        new_content = text(
            "Starts at 10:30",
            format="org.matrix.custom.html",
            formatted_body="Starts at <b>10:30</b>",
        )
        edit_content = {
            **text("* Starts at 10:30"),
            "m.new_content": new_content,
            "m.relates_to": {"rel_type": "m.replace", "event_id": original.event_id},
        }
        edit = await bot.room_send(room_id, "m.room.message", edit_content, tx_id="edit-1")
        assert isinstance(edit, RoomSendResponse), edit

    messages = await hs.messages(pair.alice, room_id)
    assert [m["event_id"] for m in messages] == [original.event_id, edit.event_id]
    assert messages[1]["content"] == edit_content

    # The server keeps the original content and bundles the latest edit with it.
    fetched = await hs.get_event(pair.alice, room_id, original.event_id)
    assert fetched["content"] == text("Starts at 10:00")
    replace = fetched["unsigned"]["m.relations"]["m.replace"]
    assert replace["event_id"] == edit.event_id
