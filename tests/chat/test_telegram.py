"""The Telegram bot through python-telegram-bot against the fake Bot API: commands, buttons,
announcements, the pinned schedule, flood limits, blocked chats and webhook mode."""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.telegram.bot import SECRET_HEADER, TelegramAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.fakes.telegram_api import FakeTelegram

from .conftest import Stage, settings

DELEGATE = 1001
MODERATOR = 42
GROUP = -100777
MODERATORS_CHAT = -100999


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def telegram(fake: FakeTelegram, runtime: ChatRuntime, **kwargs: object) -> TelegramAdapter:
    return TelegramAdapter(fake.token, base_url=fake.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                           poll_timeout=1, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def running(fake: FakeTelegram, stage: Stage) -> AsyncIterator[ChatRuntime]:
    runtime = stage.runtime(settings(moderators=(f"telegram:{MODERATOR}",), chats=(f"telegram:{MODERATORS_CHAT}",)))
    runtime.add(telegram(fake, runtime))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def texts(fake: FakeTelegram, chat: int) -> list[str]:
    return fake.messages_in(chat)


async def test_commands_and_buttons_are_answered(fake: FakeTelegram, running: ChatRuntime) -> None:
    fake.push_message(DELEGATE, DELEGATE, "/start", language_code="es")
    await fake.wait_for(lambda: len(texts(fake, DELEGATE)) >= 2)
    assert texts(fake, DELEGATE)[0].startswith("Le damos la bienvenida a floorbridge.")  # Telegram said "es"
    welcome = next(s for s in fake.sent if s.chat_id == DELEGATE)
    assert welcome.parse_mode == "HTML" and "inline_keyboard" in str(welcome.reply_markup)
    fake.push_callback(DELEGATE, DELEGATE, "lang en", welcome.message_id)
    await fake.wait_for(lambda: any("English" in t for t in texts(fake, DELEGATE)))
    assert len(fake.callback_answers) == 1
    fake.push_message(DELEGATE, DELEGATE, "/today")
    await fake.wait_for(lambda: any("High-level segment" in t for t in texts(fake, DELEGATE)))
    assert fake.http_429 == 0


async def test_hostile_text_is_escaped_for_telegram_html(fake: FakeTelegram, running: ChatRuntime) -> None:
    # The fake refuses any malformed or unsupported HTML, as Telegram does: an unescaped reply fails.
    fake.push_message(DELEGATE, DELEGATE, "/session <b>@everyone</b>&<script>")
    await fake.wait_for(lambda: texts(fake, DELEGATE))
    assert texts(fake, DELEGATE) == ["There is no session <b>@everyone</b>&<script> in WSIS+20 High-Level Event 2025."]


async def test_a_publish_reaches_each_subscriber_once_and_updates_the_pinned_schedule(
    fake: FakeTelegram, stage: Stage, running: ChatRuntime
) -> None:
    fake.push_message(DELEGATE, DELEGATE, "/subscribe")
    fake.push_message(GROUP, 555, "/subscribe@floorbridge_test_bot", chat_type="supergroup", title="Delegates")
    await fake.wait_for(lambda: texts(fake, DELEGATE) and texts(fake, GROUP))
    assert texts(fake, GROUP) == ["Only the moderators of wsis-2025 can do that."]
    fake.push_message(GROUP, MODERATOR, "/subscribe", chat_type="supergroup", title="Delegates")
    await fake.wait_for(lambda: len(texts(fake, GROUP)) == 2)

    await stage.publish_change(running, "30")
    await fake.wait_for(lambda: GROUP in fake.pinned and any("Agenda updated" in t for t in texts(fake, DELEGATE)),
                        timeout=10)
    pinned = fake.pinned[GROUP]
    assert "09:30–10:30" in (fake.message(GROUP, pinned) or {}).get("text", "")
    await stage.publish_change(running, "45")
    await fake.wait_for(lambda: "09:45–10:30" in (fake.message(GROUP, pinned) or {}).get("text", ""), timeout=10)
    assert fake.pinned[GROUP] == pinned  # edited in place, not a new pin
    announcements = [t for t in texts(fake, DELEGATE) if "Agenda updated" in t]
    assert len(announcements) == 2 and "version 2" in announcements[0] and "version 3" in announcements[1]
    assert fake.http_429 == 0


async def test_a_burst_to_one_chat_keeps_under_one_per_second(fake: FakeTelegram, stage: Stage,
                                                                running: ChatRuntime) -> None:
    chat = ChatRef(Platform.TELEGRAM, str(DELEGATE))
    await stage.chats.enqueue([OutgoingMessage(chat, message(p(f"notice {n}"))) for n in range(4)])
    running.engine.notify()
    await fake.wait_for(lambda: len(texts(fake, DELEGATE)) == 4, timeout=10)
    times = [s.at for s in fake.sent if s.chat_id == DELEGATE]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert texts(fake, DELEGATE) == [f"notice {n}" for n in range(4)]
    assert fake.http_429 == 0


async def test_a_blocked_chat_is_unsubscribed_and_the_moderators_are_told(fake: FakeTelegram, stage: Stage,
                                                                          running: ChatRuntime) -> None:
    gone = ChatRef(Platform.TELEGRAM, "2002")
    await stage.subscribe(gone)
    fake.block(2002)
    await stage.publish_change(running)
    await fake.wait_for(lambda: texts(fake, MODERATORS_CHAT), timeout=10)
    assert "telegram:2002" in texts(fake, MODERATORS_CHAT)[0]
    assert "blocked" in texts(fake, MODERATORS_CHAT)[0]
    [sub] = await stage.chats.subscriptions_of(gone)
    assert not sub.active and "blocked" in sub.stopped_reason
    assert sum(1 for s in fake.calls if s.params.get("chat_id") == "2002") == 1  # no retry loop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_mode_checks_the_secret_and_answers(fake: FakeTelegram, stage: Stage) -> None:
    runtime = stage.runtime()
    port = free_port()
    adapter = telegram(fake, runtime, webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                       webhook_secret="s3cret-token_value")
    app = web.Application()
    app.router.add_post("/telegram/webhook", adapter.webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runtime.add(adapter)
    await runtime.start()
    try:
        assert fake.webhook_url == f"http://127.0.0.1:{port}/telegram/webhook"
        fake.push_message(DELEGATE, DELEGATE, "/help")
        await fake.wait_for(lambda: any("Commands" in t for t in texts(fake, DELEGATE)), timeout=10)
        async with ClientSession() as http:
            forged = await http.post(f"http://127.0.0.1:{port}/telegram/webhook", json={"update_id": 1},
                                     headers={SECRET_HEADER: "guess"})
            assert forged.status == 403
    finally:
        await runtime.stop()
        await runner.cleanup()
