"""The `slot` dialogue through Conversation.handle over a real SQLite store holding the WSIS+20
demo meeting: a delegate requests a speaking slot one question at a time, is told the rules
(deadline, one speaker per delegation) in their own timezone, then changes and withdraws it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytz

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.settings import Settings
from floorbridge.adapters.settings.model import MeetingSettings
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlSlotStore
from floorbridge.bots.conversation import Conversation
from floorbridge.bots.events import Incoming, Reply
from floorbridge.core.chats import ChatRef, Platform, Staff, UserRef
from floorbridge.core.ids import SessionId
from floorbridge.core.slots import Mode, ProtocolRank, SlotCall, SlotStatus, Stakeholder

from .conftest import DELEGATE, PRIVATE, WSIS, World

GENEVA = pytz.timezone("Europe/Zurich")
DEADLINE = GENEVA.localize(datetime(2025, 4, 30, 23, 59))  # "request a speaking slot by 30 April 2025"
BEFORE = datetime(2025, 4, 20, 8, 0, tzinfo=UTC)
AFTER = datetime(2025, 5, 1, 6, 0, tzinfo=UTC)  # 08:00 in Geneva, the day after
HLS = SlotCall(WSIS, "hls", "High-level segment: policy statements", DEADLINE,
               (SessionId("hls-statements-1"), SessionId("hls-statements-2"), SessionId("hls-statements-3")),
               minutes=3)
OTHER_USER = UserRef(Platform.TELEGRAM, "2002")
OTHER_CHAT = ChatRef(Platform.TELEGRAM, "2002")
PUBLIC = "https://fb.example.org"


@dataclass
class Desk:
    world: World
    service: SlotService
    conversation: Conversation

    async def ask(self, text: str, *, chat: ChatRef = PRIVATE, user: UserRef = DELEGATE, group: bool = False,
                  name: str = "Amina") -> list[Reply]:
        return await self.conversation.handle(Incoming(chat, user, text, is_group=group, user_name=name))

    async def text(self, text: str, **kwargs: object) -> str:
        return "\n\n".join(r.message.plain() for r in await self.ask(text, **kwargs))  # type: ignore[arg-type]

    async def press(self, replies: list[Reply], command: str, **kwargs: object) -> list[Reply]:
        """Press the button that runs `command` (it must be offered)."""
        offered = commands(replies)
        assert command in offered, f"{command!r} not among the buttons {offered}"
        return await self.ask(command, **kwargs)  # type: ignore[arg-type]


def commands(replies: list[Reply]) -> list[str]:
    return [b.command for r in replies for row in r.message.buttons for b in row]


def plain(replies: list[Reply]) -> str:
    return "\n\n".join(r.message.plain() for r in replies)


@pytest.fixture
async def desk(world: World) -> AsyncIterator[Desk]:
    world.clock[0] = BEFORE
    service = SlotService(SqlSlotStore(world.store.engine), world.store, clock=lambda: world.clock[0])
    await service.open_call(HLS)
    conversation = Conversation(world.store, world.chats, Staff(), public_url=PUBLIC,
                                clock=lambda: world.clock[0], slots=service)
    yield Desk(world, service, conversation)


async def file_request(d: Desk, delegation: str = "Kenya", *, chat: ChatRef = PRIVATE,
                       user: UserRef = DELEGATE) -> list[Reply]:
    who = {"chat": chat, "user": user}
    await d.ask("slot hls", **who)
    for answer in ("slot name Amina Diallo", "slot title Cabinet Secretary for ICT",
                   f"slot delegation {delegation}", "slot stakeholder government", "slot rank minister",
                   "slot session hls-statements-2", "slot mode remote", "slot language fr"):
        await d.ask(answer, **who)
    return await d.ask("slot send", **who)


async def test_the_whole_dialogue_one_question_at_a_time(desk: Desk) -> None:
    listed = await desk.ask("slot")
    assert "High-level segment: policy statements" in plain(listed)
    assert "requests until 30 Apr 2025 23:59" in plain(listed)

    step = await desk.press(listed, "slot hls")
    text = plain(step)
    assert "Step 1 of 8" in text and "slot name" in text  # a free-text answer says how to give it
    assert "slot name Amina" in commands(step)  # the platform's display name, one press away

    step = await desk.ask("slot name   Amina   Diallo ")
    assert "Step 2 of 8" in plain(step) and "title or function" in plain(step)
    step = await desk.ask("slot title Cabinet Secretary for ICT")
    assert "Step 3 of 8" in plain(step) and "delegation" in plain(step)
    step = await desk.ask("slot delegation Kenya")
    assert "Step 4 of 8" in plain(step)
    labels = [b.label for r in step for row in r.message.buttons for b in row]
    assert "Civil society" in labels and "International organisation" in labels

    step = await desk.press(step, "slot stakeholder government")
    labels = [b.label for r in step for row in r.message.buttons for b in row]
    assert labels[0] == "Head of State or Government" and "Minister" in labels  # human labels, precedence order
    step = await desk.press(step, "slot rank minister")
    assert "09:00–10:30" not in plain(step) and "14:00–15:30" in plain(step)  # the call's sessions, Geneva time
    step = await desk.press(step, "slot session hls-statements-2")
    step = await desk.press(step, "slot mode remote")
    step = await desk.press(step, "slot language fr")

    summary = plain(step)
    for expected in ("Name: Amina Diallo", "Title or function: Cabinet Secretary for ICT", "Delegation: Kenya",
                     "Stakeholder group: Government", "Rank: Minister", "policy statements (2)", "Mode: Remotely",
                     "Language: Français"):
        assert expected in summary
    assert await desk.service.store.requests(WSIS) == []  # nothing is stored before "send"

    ack = await desk.press(step, "slot send")
    [stored] = await desk.service.store.requests(WSIS, "hls")
    assert stored.requester == "telegram:1001" and stored.notify == "telegram:1001"
    form = stored.form
    assert (form.name, form.title, form.delegation) == ("Amina Diallo", "Cabinet Secretary for ICT", "Kenya")
    assert (form.stakeholder, form.rank, form.session, form.mode, form.language) == (
        Stakeholder.GOVERNMENT, ProtocolRank.MINISTER, "hls-statements-2", Mode.REMOTE, "fr")
    text = plain(ack)
    assert stored.ref in text and f"{PUBLIC}/ical/slot/{stored.feed_token}.ics" in text
    assert all(r.private for r in ack)
    assert f"slot withdraw {stored.ref}" in commands(ack)

    mine = await desk.press(ack, "slot mine")
    assert stored.ref in plain(mine) and "waiting for review" in plain(mine)
    assert f"slot change {stored.ref}" in commands(mine)


async def test_bad_answers_are_asked_again(desk: Desk) -> None:
    await desk.ask("slot hls")
    too_long = await desk.ask("slot name " + "x" * 201)
    assert "at most 200 characters" in plain(too_long) and "Step 1 of 8" in plain(too_long)
    assert "Step 2 of 8" in plain(await desk.ask("slot name Amina Diallo"))
    await desk.ask("slot title Minister")
    await desk.ask("slot delegation Kenya")
    wrong = await desk.ask("slot stakeholder aliens")
    assert "aliens is not one of the choices" in plain(wrong) and "slot stakeholder government" in commands(wrong)
    assert "Step 5 of 8" in plain(await desk.ask("slot stakeholder civil-society"))
    again = await desk.ask("slot name")  # a question without an answer is asked again
    assert "Step 1 of 8" in plain(again)
    cancelled = await desk.ask("slot cancel")
    assert "nothing was sent" in plain(cancelled)
    assert "no request in progress" in plain(await desk.ask("slot rank minister"))


async def test_after_the_deadline_the_refusal_shows_it_in_the_users_own_time(desk: Desk) -> None:
    await desk.ask("tz Tokyo")
    desk.world.clock[0] = AFTER
    refused = plain(await desk.ask("slot hls"))
    # 23:59 in Geneva (UTC+2) on 30 April is 06:59 on 1 May in Tokyo (UTC+9).
    assert "passed on 30 Apr 2025 23:59 (1 May 2025 06:59 your time)" in refused
    listed = await desk.ask("slot")
    assert "closed since 30 Apr 2025 23:59" in plain(listed) and "slot hls" not in commands(listed)


async def test_the_deadline_passing_mid_dialogue_is_refused_at_the_next_answer(desk: Desk) -> None:
    desk.world.clock[0] = DEADLINE - timedelta(minutes=5)
    await desk.ask("slot hls")
    await desk.ask("slot name Amina Diallo")
    desk.world.clock[0] = DEADLINE + timedelta(minutes=1)
    assert "passed on 30 Apr 2025 23:59" in plain(await desk.ask("slot title Minister"))
    assert await desk.service.store.requests(WSIS) == []


async def test_one_speaker_per_delegation(desk: Desk) -> None:
    await file_request(desk, "Kenya")
    await desk.ask("slot hls", chat=OTHER_CHAT, user=OTHER_USER)
    await desk.ask("slot name Otieno Okoth", chat=OTHER_CHAT, user=OTHER_USER)
    await desk.ask("slot title Ambassador", chat=OTHER_CHAT, user=OTHER_USER)
    taken = plain(await desk.ask("slot delegation  kenya ", chat=OTHER_CHAT, user=OTHER_USER))
    assert "kenya already has a speaker in High-level segment: policy statements (one speaker per delegation)" \
        in taken
    assert "Step 3 of 8" in taken  # asked again
    assert "Step 4 of 8" in plain(await desk.ask("slot delegation Uganda", chat=OTHER_CHAT, user=OTHER_USER))
    assert len(await desk.service.store.requests(WSIS)) == 1


async def test_a_delegation_taken_while_answering_is_refused_on_send(desk: Desk) -> None:
    who = {"chat": OTHER_CHAT, "user": OTHER_USER}
    await desk.ask("slot hls", **who)
    for answer in ("slot name Otieno Okoth", "slot title Ambassador", "slot delegation Kenya",
                   "slot stakeholder government", "slot rank ambassador_or_head_of_delegation",
                   "slot session 1", "slot mode in_room", "slot language en"):
        await desk.ask(answer, **who)
    await file_request(desk, "Kenya")  # Amina sends first
    refused = plain(await desk.ask("slot send", **who))
    assert "Refused: Kenya already has a speaker" in refused and "Step 3 of 8" in refused
    await desk.ask("slot delegation Uganda", **who)
    assert "Your request is received" in plain(await desk.ask("slot send", **who))
    requests = await desk.service.store.requests(WSIS, "hls")
    assert sorted(r.form.delegation for r in requests) == ["Kenya", "Uganda"]


async def test_a_second_request_for_the_same_call_is_pointed_to_the_first(desk: Desk) -> None:
    ack = await file_request(desk)
    [stored] = await desk.service.store.requests(WSIS)
    again = await desk.ask("slot hls")
    assert f"You already have a request for High-level segment: policy statements: {stored.ref}" in plain(again)
    assert commands(again) == [f"slot change {stored.ref}", f"slot withdraw {stored.ref}"]
    assert ack


async def test_changing_a_request_sends_it_back_to_review(desk: Desk) -> None:
    await file_request(desk)
    [stored] = await desk.service.store.requests(WSIS)
    await desk.service.decide(stored.ref, SlotStatus.WAITLISTED, meeting_id=WSIS, reason="segment full")
    mine = await desk.ask("slot mine")
    assert "on the waiting list" in plain(mine) and "segment full" in plain(mine)
    summary = await desk.press(mine, f"slot change {stored.ref}")
    assert f"Your changed request {stored.ref}" in plain(summary) and "slot send" in commands(summary)
    summary = await desk.press(summary, "slot session")
    summary = await desk.press(summary, "slot session hls-statements-3")
    assert "policy statements (3)" in plain(summary)
    done = await desk.press(summary, "slot send")
    assert f"Your request {stored.ref} is changed." in plain(done)
    [changed] = await desk.service.store.requests(WSIS)
    assert changed.ref == stored.ref and changed.form.session == "hls-statements-3"
    assert changed.status is SlotStatus.PENDING and changed.reason == ""


async def test_withdrawing_and_refusal_after_the_deadline(desk: Desk) -> None:
    await desk.ask("tz America/New_York")
    await file_request(desk)
    [first] = await desk.service.store.requests(WSIS)
    done = await desk.ask(f"slot withdraw {first.ref.lower()}")  # references are read case-insensitively
    assert f"Your request {first.ref} for High-level segment: policy statements is withdrawn." in plain(done)
    assert (await desk.service.store.requests(WSIS))[0].status is SlotStatus.WITHDRAWN
    assert "slot hls" in commands(done)

    await file_request(desk)  # a new one is allowed once the first is withdrawn
    second = next(r for r in await desk.service.store.requests(WSIS) if r.ref != first.ref)
    desk.world.clock[0] = AFTER
    refused = plain(await desk.ask(f"slot withdraw {second.ref}"))
    # 23:59 in Geneva is 17:59 in New York (UTC-4).
    assert "passed on 30 Apr 2025 23:59 (30 Apr 2025 17:59 your time)" in refused
    assert "can no longer be changed or withdrawn" in refused
    assert "can no longer be changed" in plain(await desk.ask(f"slot change {second.ref}"))
    assert (await desk.service.store.get_request(second.ref)).status is SlotStatus.PENDING  # type: ignore[union-attr]
    mine = await desk.ask("slot mine")
    assert "withdrawn" in plain(mine) and commands(mine) == []  # no buttons after the deadline


async def test_nobody_else_can_touch_a_request(desk: Desk) -> None:
    await file_request(desk)
    [stored] = await desk.service.store.requests(WSIS)
    text = plain(await desk.ask(f"slot withdraw {stored.ref}", chat=OTHER_CHAT, user=OTHER_USER))
    assert f"You have no speaking-slot request {stored.ref}" in text
    assert (await desk.service.store.get_request(stored.ref)).status is SlotStatus.PENDING  # type: ignore[union-attr]


async def test_requests_are_made_in_private_chats_only(desk: Desk) -> None:
    group = ChatRef(Platform.TELEGRAM, "-100777")
    assert "ask me in a private chat" in plain(await desk.ask("slot hls", chat=group, group=True))


async def test_unknown_calls_and_help(desk: Desk) -> None:
    text = plain(await desk.ask("slot nope"))
    assert "no call for speaking-slot requests named nope" in text and "slot hls" in text
    assert "slot [CALL|mine|list|withdraw REF]" in plain(await desk.ask("help"))


async def test_without_the_service_the_command_says_so(world: World) -> None:
    assert "not available" in await world.text("slot")


async def test_the_chat_runtime_passes_the_service_to_the_conversation(world: World) -> None:
    world.clock[0] = BEFORE
    service = SlotService(SqlSlotStore(world.store.engine), world.store, clock=lambda: world.clock[0])
    await service.open_call(HLS)
    runtime = ChatRuntime(world.store, world.chats, world.outbox, Settings(meetings=MeetingSettings(seed=())),
                          clock=lambda: world.clock[0], slots=service)
    replies = await runtime.conversation.handle(Incoming(PRIVATE, DELEGATE, "slot"))
    assert "slot hls" in commands(replies)


async def test_an_unfinished_request_is_forgotten_after_an_hour_of_silence(desk: Desk) -> None:
    await desk.ask("slot hls")
    await desk.ask("slot name Amina Diallo")
    desk.world.clock[0] += timedelta(minutes=59)
    assert "Step 3 of 8" in plain(await desk.ask("slot title Minister"))  # each answer keeps it alive
    desk.world.clock[0] += timedelta(minutes=61)
    assert "no request in progress" in plain(await desk.ask("slot delegation Kenya"))
    assert "Step 1 of 8" in plain(await desk.ask("slot hls"))  # and starts afresh
