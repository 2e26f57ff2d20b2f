"""Speaking slots end to end on the Telegram fake: a delegate requests one with the guided
dialogue in a private chat, the secretariat reviews it from the moderators' group with the
buttons, and the delegate hears the decision in their own chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import pytz

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.settings.model import StaffSettings
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlSlotStore
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import Platform
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.slots import SlotCall, SlotStatus
from tests.fakes.telegram_api import FakeTelegram

from .conftest import Stage, settings

WSIS = MeetingId("wsis-2025")
GENEVA = pytz.timezone("Europe/Zurich")
# The stage's clock stands at 10:30 in Geneva on 9 July 2025; requests close at 10:45.
HLS = SlotCall(WSIS, "hls", "High-level segment: policy statements", GENEVA.localize(datetime(2025, 7, 9, 10, 45)),
               (SessionId("hls-statements-1"), SessionId("hls-statements-2")), minutes=3)
SECRETARY, AMINA, MODERATOR = 7, 1001, 42
STAFF_ROOM = -100999


@pytest.fixture
async def running(stage: Stage) -> AsyncIterator[tuple[FakeTelegram, ChatRuntime]]:
    config = settings()
    config.meetings.staff["wsis-2025"] = StaffSettings(
        secretariat=(f"telegram:{SECRETARY}",), moderators=(f"telegram:{MODERATOR}",),
        chats=(f"telegram:{STAFF_ROOM}",))
    service = SlotService(SqlSlotStore(stage.store.engine), stage.store, clock=stage.clock)
    await service.open_call(HLS)
    async with FakeTelegram() as fake:
        runtime = ChatRuntime(stage.store, stage.chats, stage.outbox, config, clock=stage.clock,
                              speakers=stage.speakers, slots=service)
        runtime.add(TelegramAdapter(fake.token, base_url=fake.base_url, poll_timeout=1,
                                    replies=runtime.replies_for(Platform.TELEGRAM)))
        await runtime.start()
        try:
            yield fake, runtime
        finally:
            await runtime.stop()


async def ask(fake: FakeTelegram, chat: int, user: int, text: str, expect: str, *, group: bool = False) -> None:
    before = len(fake.messages_in(chat))
    if group:
        fake.push_message(chat, user, text, chat_type="supergroup", title="WSIS secretariat")
    else:
        fake.push_message(chat, user, text, first_name="Amina", language_code="fr")
    await fake.wait_for(lambda: any(expect in m for m in fake.messages_in(chat)[before:]))


async def test_requested_in_chat_reviewed_with_a_button_and_the_delegate_is_told(
    running: tuple[FakeTelegram, ChatRuntime], stage: Stage
) -> None:
    fake, runtime = running
    await ask(fake, AMINA, AMINA, "/lang en", "English")
    await ask(fake, AMINA, AMINA, "/tz Nairobi", "Nairobi")
    await ask(fake, AMINA, AMINA, "/slot hls", "Step 1 of 8")
    for answer, expect in (("/slot name Amina Diallo", "Step 2"), ("/slot title Cabinet Secretary", "Step 3"),
                           ("/slot delegation Kenya", "Step 4"), ("/slot stakeholder government", "Step 5"),
                           ("/slot rank minister", "Step 6"), ("/slot session hls-statements-1", "Step 7"),
                           ("/slot mode remote", "Step 8"), ("/slot language fr", "Your request for")):
        await ask(fake, AMINA, AMINA, answer, expect)
    await ask(fake, AMINA, AMINA, "/slot send", "Your request is received")
    (request,) = await runtime.slots.store.requests(WSIS)  # type: ignore[union-attr]

    stage.clock.advance(minutes=20)  # past the deadline: the secretariat reviews
    await ask(fake, STAFF_ROOM, MODERATOR, "/review hls", "Only the secretariat", group=True)
    await ask(fake, STAFF_ROOM, SECRETARY, "/review hls", "In draft order", group=True)
    listing = next(s for s in reversed(fake.sent) if s.chat_id == STAFF_ROOM)
    assert f"review {request.ref} approve" in str(listing.reply_markup)
    fake.push_callback(STAFF_ROOM, SECRETARY, f"review {request.ref} approve", listing.message_id)
    await fake.wait_for(lambda: fake.said(STAFF_ROOM, "approved — number 1 in High-level segment"))
    assert fake.said(STAFF_ROOM, "The delegate is told in their chat.")

    await fake.wait_for(lambda: fake.said(AMINA, "policy statements is approved"))
    notice = next(m for m in fake.messages_in(AMINA) if "policy statements is approved" in m)
    assert f"Your speaking-slot request {request.ref}" in notice
    assert "9 Jul 2025 11:00 (9 Jul 2025 12:00 your time), 3 minutes" in notice
    assert f"/ical/slot/{request.feed_token}.ics" in notice
    stored = await runtime.slots.store.get_request(request.ref)  # type: ignore[union-attr]
    assert stored is not None and stored.status is SlotStatus.APPROVED
    assert fake.http_429 == 0
