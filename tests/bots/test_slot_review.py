"""The secretariat reviews speaking-slot requests from chat (`review`), over a real SQLite store
holding the WSIS+20 demo meeting, and each delegate is told the decision in the chat they asked
from, in their language and timezone, by a message stored with the decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytz

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.settings import Settings
from floorbridge.adapters.settings.model import MeetingSettings, StaffSettings
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlSlotStore
from floorbridge.bots.events import Incoming, Reply
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, UserRef
from floorbridge.core.ids import SessionId
from floorbridge.core.outbox import OutboxStatus
from floorbridge.core.slots import Mode, ProtocolRank, SlotCall, SlotForm, SlotRequest, SlotStatus, Stakeholder

from .conftest import WSIS, World

GENEVA = pytz.timezone("Europe/Zurich")
DEADLINE = GENEVA.localize(datetime(2025, 4, 30, 23, 59))
BEFORE = datetime(2025, 4, 20, 8, 0, tzinfo=UTC)
AFTER = datetime(2025, 5, 2, 8, 0, tzinfo=UTC)
S1, S2, S3 = SessionId("hls-statements-1"), SessionId("hls-statements-2"), SessionId("hls-statements-3")
HLS = SlotCall(WSIS, "hls", "High-level segment: policy statements", DEADLINE, (S1, S2, S3), minutes=3)
LONG = SlotCall(WSIS, "keynotes", "Keynotes", DEADLINE, (S3,), minutes=45)  # two fit in 16:00–17:30

SECRETARY = UserRef(Platform.TELEGRAM, "7")
SECRETARY_CHAT = ChatRef(Platform.TELEGRAM, "7")
MODERATOR = UserRef(Platform.TELEGRAM, "42")
STAFF_ROOM = ChatRef(Platform.TELEGRAM, "-100999")
OTHER_GROUP = ChatRef(Platform.TELEGRAM, "-100555")


def person(n: int) -> tuple[UserRef, ChatRef]:
    return UserRef(Platform.TELEGRAM, str(1000 + n)), ChatRef(Platform.TELEGRAM, str(1000 + n))


def form(delegation: str, rank: ProtocolRank, session: SessionId = S1, mode: Mode = Mode.REMOTE) -> SlotForm:
    return SlotForm(name=f"Speaker of {delegation}", title="Minister", delegation=delegation,
                    stakeholder=Stakeholder.GOVERNMENT, rank=rank, session=session, mode=mode, language="en")


def plain(replies: list[Reply]) -> str:
    return "\n\n".join(r.message.plain() for r in replies)


def commands(replies: list[Reply]) -> list[str]:
    return [b.command for r in replies for row in r.message.buttons for b in row]


@dataclass
class Desk:
    world: World
    service: SlotService
    runtime: ChatRuntime

    async def ask(self, text: str, *, chat: ChatRef = SECRETARY_CHAT, user: UserRef = SECRETARY,
                  group: bool = False) -> list[Reply]:
        return await self.runtime.conversation.handle(Incoming(chat, user, text, is_group=group))

    async def file(self, n: int, delegation: str, rank: ProtocolRank, *, session: SessionId = S1,
                   call: SlotCall = HLS, language: str = "en", zone: str = "") -> SlotRequest:
        """A delegate files from their private chat (as the `slot` dialogue does)."""
        user, chat = person(n)
        await self.world.chats.save_profile(ChatProfile(chat, language=language, timezone=zone, meeting_id=WSIS,
                                                        started=True))
        self.world.clock[0] += timedelta(minutes=1)  # receipt order
        return await self.service.submit(WSIS, call.id, form(delegation, rank, session), str(user),
                                         notify=str(chat))

    async def told(self, chat: ChatRef) -> list[str]:
        return [item.outgoing.message.plain() for item, status, _ in await self.world.outbox.rows(chat)
                if status is OutboxStatus.PENDING]


@pytest.fixture
async def desk(world: World) -> AsyncIterator[Desk]:
    world.clock[0] = BEFORE
    config = Settings(meetings=MeetingSettings(seed=(), staff={"wsis-2025": StaffSettings(
        secretariat=(str(SECRETARY),), moderators=(str(MODERATOR),), chats=(str(STAFF_ROOM),))}))
    service = SlotService(SqlSlotStore(world.store.engine), world.store, clock=lambda: world.clock[0])
    runtime = ChatRuntime(world.store, world.chats, world.outbox, config, clock=lambda: world.clock[0],
                          slots=service)
    await service.open_call(HLS)
    await service.open_call(LONG)
    yield Desk(world, service, runtime)


async def test_the_draft_order_is_protocol_precedence_then_receipt(desk: Desk) -> None:
    ambassador = await desk.file(1, "Ruritania", ProtocolRank.AMBASSADOR_OR_HEAD_OF_DELEGATION)
    minister = await desk.file(2, "Kenya", ProtocolRank.MINISTER)
    president = await desk.file(3, "Freedonia", ProtocolRank.HEAD_OF_STATE_OR_GOVERNMENT)
    second_minister = await desk.file(4, "Brazil", ProtocolRank.MINISTER)
    desk.world.clock[0] = AFTER

    overview = await desk.ask("review")
    assert "4 requests to review, 0 approved" in plain(overview)
    assert "review hls" in commands(overview)

    listed = await desk.ask("review hls")
    text = plain(listed)
    order = [text.index(r.ref) for r in (president, minister, second_minister, ambassador)]
    assert order == sorted(order), text
    assert f"review {president.ref} approve" in commands(listed)
    assert f"review {president.ref} waitlist" in commands(listed)
    assert "review REF reject REASON" in text


async def test_approving_places_the_speaker_after_the_last_and_tells_them_in_their_language(desk: Desk) -> None:
    first = await desk.file(1, "Kenya", ProtocolRank.MINISTER, language="fr", zone="Africa/Nairobi")
    second = await desk.file(2, "Brazil", ProtocolRank.MINISTER)
    desk.world.clock[0] = AFTER

    done = plain(await desk.ask(f"review {first.ref} approve"))
    assert "approved — number 1 in High-level segment: policy statements (1), 9 Jul 2025 11:00, 3 minutes" in done
    assert "The delegate is told in their chat." in done
    done = plain(await desk.ask(f"review {second.ref} approve"))
    assert "number 2 in High-level segment: policy statements (1), 9 Jul 2025 11:03" in done

    stored = await desk.service.store.get_request(second.ref)
    assert stored is not None and stored.status is SlotStatus.APPROVED and stored.order == 2
    assert stored.slot_start == GENEVA.localize(datetime(2025, 7, 9, 11, 3)) and stored.slot_minutes == 3

    (notice,) = await desk.told(person(1)[1])  # in French, with Nairobi time next to Geneva's
    assert f"Votre demande de temps de parole {first.ref}" in notice
    assert "12:00" in notice and "11:00" in notice
    assert f"/ical/slot/{first.feed_token}.ics" in notice
    assert "https://www.wsis.org/forum" in notice  # a remote speaker is sent the remote link
    (english,) = await desk.told(person(2)[1])
    assert f"Your speaking-slot request {second.ref} for High-level segment: policy statements is approved" in english


async def test_approve_in_another_session_and_a_full_session_is_refused(desk: Desk) -> None:
    moved = await desk.file(1, "Kenya", ProtocolRank.MINISTER)
    desk.world.clock[0] = AFTER
    shown = await desk.ask(f"review {moved.ref}")
    assert f"review {moved.ref} approve 3" in commands(shown)  # the segment's third session, by number
    assert "number 1 in High-level segment: policy statements (3), 9 Jul 2025 16:00" in plain(
        await desk.ask(f"review {moved.ref} approve 3"))
    assert "is not one of the segment's sessions" in plain(await desk.ask(f"review {moved.ref} approve plenary"))

    desk.world.clock[0] = BEFORE
    keynotes = [await desk.file(10 + n, f"Country {n}", ProtocolRank.MINISTER, session=S3, call=LONG)
                for n in range(3)]
    desk.world.clock[0] = AFTER
    # The session's list runs across calls: after the 3-minute statement approved above.
    assert "number 2 in High-level segment: policy statements (3), 9 Jul 2025 16:03, 45 minutes" in plain(
        await desk.ask(f"review {keynotes[0].ref} approve"))
    assert "16:48" in plain(await desk.ask(f"review {keynotes[1].ref} approve"))
    full = plain(await desk.ask(f"review {keynotes[2].ref} approve"))
    assert "Refused:" in full and "is outside High-level segment: policy statements (3)" in full
    stored = await desk.service.store.get_request(keynotes[2].ref)
    assert stored is not None and stored.status is SlotStatus.PENDING
    assert await desk.told(person(12)[1]) == []  # nothing is told of a decision not taken


async def test_waitlist_and_reject_with_the_reason_the_delegate_reads(desk: Desk) -> None:
    waiting = await desk.file(1, "Kenya", ProtocolRank.DEPUTY_MINISTER)
    refused = await desk.file(2, "Brazil", ProtocolRank.OTHER)
    desk.world.clock[0] = AFTER

    assert "A rejection needs the reason" in plain(await desk.ask(f"review {refused.ref} reject"))
    assert await desk.told(person(2)[1]) == []
    done = plain(await desk.ask(f"review {refused.ref} reject The segment is for ministers <b>only</b>"))
    assert "not accepted (The segment is for ministers <b>only</b>)" in done
    (notice,) = await desk.told(person(2)[1])
    assert "was not accepted" in notice and "The secretariat's note: The segment is for ministers <b>only</b>" in notice

    assert "on the waiting list" in plain(await desk.ask(f"review {waiting.ref} waitlist"))
    (notice,) = await desk.told(person(1)[1])
    assert "is on the waiting list" in notice and "if a slot becomes free" in notice
    # A waitlisted request stays in the draft order and can still be approved.
    assert waiting.ref in plain(await desk.ask("review hls"))
    assert "approved" in plain(await desk.ask(f"review {waiting.ref} approve"))
    assert len(await desk.told(person(1)[1])) == 2

    assert "not a decision" in plain(await desk.ask(f"review {waiting.ref} maybe"))
    assert "too long" in plain(await desk.ask(f"review {waiting.ref} reject {'x' * 501}"))
    assert "has no speaking-slot request or call NOPE-123456" in plain(await desk.ask("review NOPE-123456 approve"))


async def test_a_request_from_the_web_is_decided_without_a_chat_notice(desk: Desk) -> None:
    web = await desk.service.submit(WSIS, HLS.id, form("Kenya", ProtocolRank.MINISTER), "web:abc")
    desk.world.clock[0] = AFTER
    done = plain(await desk.ask(f"review {web.ref} approve"))
    assert "asked on the web" in done
    assert [row for row in await desk.world.outbox.rows() if "slot" in row[0].outgoing.cause] == []


async def test_only_the_secretariat_reviews_and_only_where_personal_details_may_be_shown(desk: Desk) -> None:
    request = await desk.file(1, "Kenya", ProtocolRank.MINISTER)
    desk.world.clock[0] = AFTER
    delegate, delegate_chat = person(1)
    for user, chat in ((MODERATOR, ChatRef(Platform.TELEGRAM, "42")), (delegate, delegate_chat)):
        refused = plain(await desk.ask(f"review {request.ref} approve", user=user, chat=chat))
        assert "Only the secretariat of WSIS+20" in refused
    assert "Only the secretariat" in plain(await desk.ask("review hls", user=delegate, chat=delegate_chat))
    assert "personal details" in plain(await desk.ask("review hls", chat=OTHER_GROUP, group=True))
    stored = await desk.service.store.get_request(request.ref)
    assert stored is not None and stored.status is SlotStatus.PENDING

    in_room = plain(await desk.ask(f"review {request.ref} approve", chat=STAFF_ROOM, group=True))
    assert "approved — number 1" in in_room


async def test_two_secretaries_deciding_at_once_make_one_decision_and_one_notice(desk: Desk) -> None:
    request = await desk.file(1, "Kenya", ProtocolRank.MINISTER)
    desk.world.clock[0] = AFTER
    replies = await asyncio.gather(desk.ask(f"review {request.ref} approve"),
                                   desk.ask(f"review {request.ref} reject Late", chat=STAFF_ROOM, group=True))
    texts = [plain(r) for r in replies]
    assert sum("changed meanwhile" in t for t in texts) == 1, texts
    assert len(await desk.told(person(1)[1])) == 1


async def test_the_rolling_list_is_published_in_chat_groups_included(desk: Desk) -> None:
    kenya = await desk.file(1, "Kenya", ProtocolRank.MINISTER)
    brazil = await desk.file(2, "Brazil", ProtocolRank.HEAD_OF_STATE_OR_GOVERNMENT)
    await desk.file(3, "Chile", ProtocolRank.MINISTER)  # still pending: not on the list
    desk.world.clock[0] = AFTER
    await desk.ask(f"review {brazil.ref} approve")
    done = await desk.ask(f"review {kenya.ref} approve")
    assert f"slot list {S1}" in commands(done)

    group, reader = ChatRef(Platform.TELEGRAM, "-100123"), UserRef(Platform.TELEGRAM, "555")
    overview = await desk.ask("slot list", chat=group, user=reader, group=True)
    assert "policy statements (1) · Hall 2 · hls-statements-1 — 2 speakers" in plain(overview)
    assert "policy statements (2) · Hall 2 · hls-statements-2 — 0 speakers" in plain(overview)
    shown = plain(await desk.ask(f"slot list {S1}", chat=group, user=reader, group=True))
    assert ("• 1. 9 Jul 2025 11:00 · Speaker of Brazil, Minister (Brazil) · Remotely\n"
            "• 2. 9 Jul 2025 11:03 · Speaker of Kenya, Minister (Kenya) · Remotely") in shown
    assert "Chile" not in shown
    assert f"/meetings/wsis-2025/sessions/{S1}/speakers-list" in shown
    assert "not a session with a list of speakers" in plain(await desk.ask("slot list plenary", chat=group,
                                                                          user=reader, group=True))


async def test_a_decision_taken_in_the_console_tells_the_delegate_too(desk: Desk) -> None:
    request = await desk.file(1, "Kenya", ProtocolRank.MINISTER, language="es")
    desk.world.clock[0] = AFTER
    # The console and the API call the same service the chat command does.
    await desk.service.decide(request.ref, SlotStatus.WAITLISTED, meeting_id=WSIS, reason="Demasiados oradores")
    (notice,) = await desk.told(person(1)[1])
    assert "lista de espera" in notice and "Demasiados oradores" in notice
