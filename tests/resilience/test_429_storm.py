"""A 429 storm: Telegram allows far fewer messages than floorbridge was told (5 a second instead
of 30). Every 429's retry_after is honoured for the whole bot: no send goes out before it has
passed, and every message still arrives, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.delivery.limits import TelegramLimiter
from tests.chat.conftest import open_stage, settings
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(120)

CHATS = 40
MARK = "Storm message"


async def test_a_429_storm_is_honoured_without_extra_requests(tmp_path: Path) -> None:
    tg = FakeTelegram(global_per_second=5)
    await tg.start()
    stage = await open_stage(tmp_path)
    runtime: ChatRuntime | None = None
    try:
        runtime = stage.runtime(settings())
        runtime.add(TelegramAdapter(tg.token, base_url=tg.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                                    poll_timeout=1), limiter=TelegramLimiter(30, 1.0, 20),
                    concurrency=settings().telegram.in_flight)
        await runtime.start()
        await stage.chats.enqueue([OutgoingMessage(ChatRef(Platform.TELEGRAM, str(20_000 + n)),
                                                   message(p(f"{MARK} {n}")), dedup_key=f"storm-{n}")
                                   for n in range(CHATS)])
        runtime.engine.notify()

        def delivered() -> list[str]:
            return [s.plain_text or s.text or "" for s in tg.sent if MARK in (s.plain_text or s.text or "")]

        async with asyncio.timeout(90):
            while len(delivered()) < CHATS:  # noqa: ASYNC110 (the fake has no event)
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        assert sorted(delivered()) == sorted(f"{MARK} {n}" for n in range(CHATS))  # each once
        sends = [c for c in tg.calls if c.method == "sendMessage"]
        refused = [c for c in sends if c.status == 429]
        assert refused, "the storm did not happen: the fake's limit was not reached"
        for call in refused:
            retry_after = 1.0  # the fake answers whole seconds, at least 1; this storm waits under a second
            early = [c for c in sends if call.at < c.at < call.at + retry_after - 0.05]
            assert not early, f"{len(early)} sends inside the retry_after of a 429"
    finally:
        if runtime is not None:
            await runtime.stop()
        await stage.store.close()
        await tg.stop()
