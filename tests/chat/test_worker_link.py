"""The chat worker and its web process, each with its own runtime on one database, linked over
real Unix sockets as `serve --role all` links them: the worker's chats change the lists of speakers
the web process keeps, the refusals come back with their reasons, what the web process writes to
the outbox (a "you have the floor") is sent by the worker at once, and the worker's chats read the
lists as stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.settings.model import BotSettings
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.adapters.worker import PARENT_SOCKET, FloorHost, RemoteFloor, WakeListener
from floorbridge.core import floor_codec
from floorbridge.core.chats import Platform
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.speakers import (
    Actor,
    Channel,
    CloseList,
    Move,
    Next,
    NotAllowed,
    Participant,
    QueueRefused,
    ReaddLast,
    Remove,
    RequestFloor,
    SetBudget,
    SetTime,
    SpeechType,
    Withdraw,
)
from tests.fakes.telegram_api import FakeTelegram

from .conftest import NOW, Stage, settings

WSIS, HLS = MeetingId("wsis-2025"), SessionId("hls-statements-1")
CHAIR, AMINA, BORIS = 42, 1001, 1002
CHAIRS_ROOM = -100999


@dataclass
class Linked:
    fake: FakeTelegram
    web: ChatRuntime  # keeps the lists (its FloorService), as the web process does
    worker: ChatRuntime  # runs the Telegram bot and its delivery, as the chat worker does
    remote: RemoteFloor
    host: FloorHost


@pytest.fixture
async def linked(stage: Stage, tmp_path: Path) -> AsyncIterator[Linked]:
    config = settings(moderators=(f"telegram:{CHAIR}",), chats=(f"telegram:{CHAIRS_ROOM}",))
    socket = tmp_path / PARENT_SOCKET
    web = stage.runtime(config)
    assert web.floor is not None
    host = FloorHost(web.floor, socket)
    await host.start()
    web.engine.listeners.append(host.wake)
    await web.start(bots=False)
    remote = RemoteFloor(socket, stage.speakers, stage.store, clock=stage.clock)
    # The worker looks at the outbox once a minute by itself: only a wake gets a notice out sooner.
    slow = config.model_copy(update={"bots": BotSettings(delivery_poll_seconds=60, reminder_check_seconds=3600)})
    worker = ChatRuntime(stage.store, stage.chats, stage.outbox, slow, clock=stage.clock, speakers=stage.speakers,
                         floor_desk=remote)
    assert worker.floor is None  # the worker keeps no list of its own
    wakes = WakeListener(socket, worker.engine.notify)
    async with FakeTelegram() as fake:
        worker.add(TelegramAdapter(fake.token, base_url=fake.base_url, poll_timeout=1,
                                   replies=worker.replies_for(Platform.TELEGRAM)))
        await worker.start()
        await wakes.start()
        try:
            yield Linked(fake, web, worker, remote, host)
        finally:
            await wakes.stop()
            await worker.stop()
            await remote.close()
            await web.stop()
            await host.stop()


async def test_chat_requests_reach_the_web_processs_list_and_its_notices_come_back_at_once(
    linked: Linked, stage: Stage
) -> None:
    fake, web = linked.fake, linked.web
    assert web.floor is not None
    fake.push_message(AMINA, AMINA, f"/floor {HLS} Kenya", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "number 1"))
    fake.push_message(BORIS, BORIS, f"/floor reply {HLS} Ruritania", first_name="Boris")
    await fake.wait_for(lambda: fake.said(BORIS, "number 2"))
    # Refused by the web process's list, with its reason, in the delegate's chat.
    fake.push_message(AMINA, AMINA, f"/floor {HLS}", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "already have an open request (you are number 1"))

    kept = await web.floor.view(WSIS, HLS)
    assert [(s.participant.name, s.participant.delegation, s.speech_type) for s in kept.waiting()] == [
        ("Amina", "Kenya", SpeechType.CONTRIBUTION), ("Boris", "Ruritania", SpeechType.RIGHT_OF_REPLY)]

    # The chair's "next" goes to the web process, whose notices the worker sends without polling.
    fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair next {HLS}", chat_type="supergroup", title="Chairs")
    await fake.wait_for(lambda: fake.said(CHAIRS_ROOM, "Has the floor:"))
    await fake.wait_for(lambda: fake.said(AMINA, "Your time:"))
    await fake.wait_for(lambda: fake.said(BORIS, "you are next to speak"))

    # A moderator acting in the web console: the worker's delivery hears of its notices at once too.
    await web.floor.act(WSIS, HLS, Next(), Actor("console:chair", "Chair", Channel.WEB, moderator=True))
    await fake.wait_for(lambda: fake.said(BORIS, "Your time:"))

    # The worker's chats read the list as the web process stored it.
    fake.push_message(BORIS, BORIS, f"/speakers {HLS}", first_name="Boris")
    await fake.wait_for(lambda: fake.said(BORIS, "Has the floor: Boris"))
    audit = await stage.speakers.audit_trail(WSIS, HLS)
    assert [(e.action, e.actor.key, str(e.actor.channel)) for e in audit] == [
        ("request", f"telegram:{AMINA}", "telegram"), ("request", f"telegram:{BORIS}", "telegram"),
        ("next", f"telegram:{CHAIR}", "telegram"), ("next", "console:chair", "web")]


async def test_a_burst_from_the_worker_keeps_receipt_order_with_web_requests_among_it(
    linked: Linked, stage: Stage
) -> None:
    """Chat requests stamped on arrival at the worker, and stored later by the web process between
    web requests that came after them, still take their receipt place; each caller hears its own
    outcome, and the burst crosses the link in a few batches, not one call each."""
    web, remote = linked.web, linked.remote
    assert web.floor is not None
    calls = 0
    send = remote._send

    async def counted(batch):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await send(batch)

    remote._calls._run = counted  # type: ignore[method-assign]

    def person(n: int, channel: Channel) -> tuple[RequestFloor, Actor]:
        p = Participant(f"{channel}:{n}", f"Delegate {n}", f"Country {n}", channel, notify="")
        return RequestFloor(p, requested_at=NOW + timedelta(milliseconds=n)), Actor(p.key, p.name, channel)

    stage.clock.advance(1)  # the server's clock is past every receipt time given below
    chat = [remote.request(WSIS, HLS, *person(n, Channel.TELEGRAM)) for n in range(0, 400, 2)]
    web_side = [web.floor.request(WSIS, HLS, *person(n, Channel.WEB)) for n in range(1, 400, 2)]
    outcomes = await asyncio.gather(*chat, *web_side)
    assert all(o.speaker is not None for o in outcomes)
    stored = await stage.speakers.load_list(WSIS, HLS)
    assert stored is not None
    assert [s.participant.name for s in stored.waiting()] == [f"Delegate {n}" for n in range(400)]
    assert calls < 50
    chat_outcomes = outcomes[:200]
    assert [o.speaker.participant.key for o in chat_outcomes] == [  # type: ignore[union-attr]
        f"telegram:{n}" for n in range(0, 400, 2)]


async def test_refusals_come_back_as_the_same_errors(linked: Linked) -> None:
    remote = linked.remote
    amina = Participant(f"telegram:{AMINA}", "Amina", "Kenya", Channel.TELEGRAM)
    me = Actor(amina.key, "Amina", Channel.TELEGRAM)
    chair = Actor(f"telegram:{CHAIR}", "Chair", Channel.TELEGRAM, moderator=True)
    await remote.request(WSIS, HLS, RequestFloor(amina), me)
    with pytest.raises(QueueRefused, match="already have an open request") as duplicate:
        await remote.request(WSIS, HLS, RequestFloor(amina), me)
    assert duplicate.value.code == "duplicate"
    with pytest.raises(NotAllowed, match="only the meeting's moderators"):
        await remote.act(WSIS, HLS, Next(), me)
    with pytest.raises(NotFound, match="no session 'nope'"):
        await remote.request(WSIS, SessionId("nope"), RequestFloor(amina), me)
    version = (await remote.view(WSIS, HLS)).version
    await remote.act(WSIS, HLS, CloseList(), chair, version)
    with pytest.raises(ConcurrentChange, match="the list of speakers changed"):
        await remote.act(WSIS, HLS, SetTime(60), chair, version)
    boris = Participant(f"telegram:{BORIS}", "Boris", "", Channel.TELEGRAM)
    with pytest.raises(QueueRefused, match="closed") as closed:
        await remote.request(WSIS, HLS, RequestFloor(boris), Actor(boris.key, "Boris", Channel.TELEGRAM))
    assert closed.value.code == "closed"


def test_every_command_and_outcome_crosses_the_link_unchanged() -> None:
    from floorbridge.core.speakers import SpeakerList, StartSpeech

    amina = Participant("telegram:1", "Амина", "Кения", Channel.TELEGRAM, remote=True, notify="telegram:1")
    chair = Actor("matrix:@chair:example.org", "Chair", Channel.MATRIX, moderator=True)
    commands = [RequestFloor(amina, SpeechType.POINT_OF_ORDER, NOW, 7), RequestFloor(amina), Withdraw(amina.key),
                Next(), StartSpeech(3), Move(3, 1), Remove(2), CloseList(), ReaddLast(), SetTime(90),
                SetBudget("Kenya", 300), SetBudget("Kenya", None)]
    for command in commands:
        assert floor_codec.command_from_dict(floor_codec.command_to_dict(command)) == command
    assert floor_codec.actor_from_dict(floor_codec.actor_to_dict(chair)) == chair
    lst = SpeakerList(WSIS, HLS)
    outcomes = [lst.apply(RequestFloor(amina, requested_at=NOW, receipt=1), Actor(amina.key, "A", Channel.TELEGRAM),
                          NOW),
                lst.apply(Next(), chair, NOW + timedelta(seconds=1)),
                lst.apply(SetTime(60), chair, NOW + timedelta(seconds=2))]
    for outcome in outcomes:
        assert floor_codec.outcome_from_dict(floor_codec.outcome_to_dict(outcome)) == outcome
    for error in (QueueRefused("the list of speakers is closed", "closed"), NotAllowed("moderators only"),
                  ConcurrentChange("changed"), NotFound("no such session")):
        back = floor_codec.refusal_from_dict(floor_codec.refusal_to_dict(error))
        assert type(back) is type(error) and str(back) == str(error)
