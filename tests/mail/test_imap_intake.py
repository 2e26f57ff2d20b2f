"""An IMAP mailbox configured in floorbridge.yaml, polled by the service's receivers (real Dovecot),
ends in the meeting's archive; its deadlines reach the chat reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from floorbridge.adapters.mail.intake import MailIntake
from floorbridge.adapters.mail.receivers import MailReceivers
from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.storage import SqlMailStore
from floorbridge.app import services
from floorbridge.bots.notices import due_reminders
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, Subscription
from floorbridge.core.ids import MeetingId
from tests.fakes.dovecot import Dovecot

from .conftest import NOW, letter

WSIS = MeetingId("wsis-2025")
BODY = "Dear colleagues,\n\nRequests for speaking slots must be received no later than 30 April 2025.\n"


async def test_a_configured_mailbox_is_polled_into_the_archive(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user()
    config = tmp_path / "fb.yaml"
    config.write_text(
        f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/fb.db\n"
        "mail:\n  imap:\n"
        f"    - {{meeting: wsis-2025, host: {dovecot.host}, port: {dovecot.port}, tls: false,"
        f" username: {user.username}, password_env: TEST_IMAP_PASSWORD, poll_seconds: 60}}\n"
        "  meetings:\n    wsis-2025: {mode: automatic, auto_accept_confidence: 0.8}\n"
    )
    settings = load_settings(config, env={"TEST_IMAP_PASSWORD": user.password})
    async with services(settings) as svc:
        await svc.seed()
        svc.mail = MailIntake(SqlMailStore(svc.store.engine), svc.chats, svc.store, settings, publish=svc.publish,
                              moderator_chats={}, clock=lambda: NOW)
        chat = ChatRef(Platform.TELEGRAM, "1001")
        await svc.chats.save_profile(ChatProfile(chat, meeting_id=WSIS))
        await svc.chats.save_subscription(Subscription(chat, WSIS))
        receivers = MailReceivers(svc.mail, settings)
        assert len(receivers.pollers) == 1
        await receivers.start()
        try:
            await asyncio.to_thread(dovecot.append, user, letter(BODY, message_id="<imap-1@itu.int>"))
            async with asyncio.timeout(15):
                while not await svc.mail.store.listing(WSIS, archived=True):  # noqa: ASYNC110 (the database has no event)
                    await asyncio.sleep(0.1)
                # Marked seen once stored (a stop in between would bring it again: an identical copy, counted).
                while await asyncio.to_thread(dovecot.search, user, "UNSEEN"):  # noqa: ASYNC110 (IMAP state)
                    await asyncio.sleep(0.1)
        finally:
            await receivers.stop()
        [mail] = await svc.mail.store.listing(WSIS, archived=True)
        assert mail.channel == "imap" and mail.message_id == "imap-1@itu.int" and mail.copies == 1
        # The accepted deadline is one of the meeting's: the reminder loop picks it up.
        [deadline] = mail.deadlines
        version = await svc.store.latest_version(WSIS)
        meeting = await svc.store.get_meeting(WSIS)
        assert version is not None
        day_before = datetime(2025, 4, 29, 12, 0, tzinfo=UTC)
        reminders = due_reminders(meeting, version, await svc.chats.subscribers(WSIS),
                                  settings.bots.reminder_offsets(), day_before)
        mine = [r for r in reminders if deadline.id in (r.dedup_key or "")]
        assert mine and "30 April 2025" in mine[0].message.plain()
