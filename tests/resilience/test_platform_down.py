"""One platform down for 30 s (connection refused, then nginx's 502s) while messages keep coming
for every platform: the other platform's delivery latency does not change, the backlog of the one
that was down drains once it is back, and nothing is lost or sent twice."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

from floorbridge.adapters.chat_runtime import ChatRuntime, command_descriptions
from floorbridge.adapters.discord.bot import DiscordAdapter
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from floorbridge.delivery.engine import Backoff
from floorbridge.delivery.limits import DiscordLimiter, TelegramLimiter
from tests.chat.conftest import open_stage, settings
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(300)

CHATS = 40  # a wave a second: 40 messages a second per platform, under Discord's 50
MARK = "Outage message"


async def test_one_platform_down_for_30_seconds(tmp_path: Path) -> None:
    tg, dc = FakeTelegram(), FakeDiscord()
    await tg.start()
    await dc.start()
    stage = await open_stage(tmp_path)
    runtime: ChatRuntime | None = None
    try:
        guild = dc.add_guild("delegates")
        channels = [dc.add_channel(guild, f"chan-{n}") for n in range(CHATS)]
        telegram_chats = [str(10_000 + n) for n in range(CHATS)]
        runtime = stage.runtime(settings())
        runtime.add(TelegramAdapter(tg.token, base_url=tg.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                                    poll_timeout=1), limiter=TelegramLimiter(30, 1.0, 20), concurrency=1,
                    backoff=Backoff(base=0.5, cap=8.0))
        runtime.add(DiscordAdapter(dc.token, replies=runtime.replies_for(Platform.DISCORD),
                                   commands=command_descriptions(), api_url=dc.api_url, gateway_url=dc.gateway_url,
                                   guild_ready_timeout=0.05), limiter=DiscordLimiter(50))
        await runtime.start()
        sent_at: dict[str, float] = {}

        async def wave(label: str, n: int) -> None:
            """One message to every chat of both platforms, spread over a second."""
            for i in range(CHATS):
                batch = []
                for platform, chat in ((Platform.TELEGRAM, telegram_chats[i]), (Platform.DISCORD, channels[i])):
                    text = f"{MARK} {label}-{n}-{platform.value}-{i}"
                    sent_at[text] = time.monotonic()
                    batch.append(OutgoingMessage(ChatRef(platform, chat), message(p(text)),
                                                 dedup_key=f"{label}-{n}-{platform.value}-{i}"))
                await stage.chats.enqueue(batch)
                runtime.engine.notify()
                await asyncio.sleep(1 / CHATS)

        def discord_latencies(label: str) -> list[float]:
            out = []
            for c in dc.created:
                text = c["content"]
                if c["source"] == "rest" and f"{MARK} {label}-" in text:
                    key = text[text.index(MARK):].split("\n")[0].strip()
                    if key in sent_at:
                        out.append(c["time"] - sent_at[key])
            return out

        def telegram_texts() -> list[str]:
            return [s.plain_text or s.text or "" for s in tg.sent if MARK in (s.plain_text or s.text or "")]

        for n in range(3):
            await wave("before", n)
        await asyncio.sleep(2)
        before = discord_latencies("before")
        assert len(before) == 3 * CHATS

        tg.set_outage("refuse")
        outage_started = time.monotonic()
        for n in range(15):
            await wave("during", n)
            if time.monotonic() - outage_started > 15 and tg.outage == "refuse":
                tg.set_outage("502")
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
        during = discord_latencies("during")
        assert len(during) == 15 * CHATS  # Discord kept delivering while Telegram was down
        tg.set_outage(None)

        async with asyncio.timeout(120):
            while len(telegram_texts()) < 18 * CHATS:  # noqa: ASYNC110 (the fake has no event)
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # a duplicate would arrive now
        texts = telegram_texts()
        assert len(texts) == len(set(texts)) == 18 * CHATS  # the backlog drained; nothing twice
        # The other platform's latency did not change because of the outage.
        assert statistics.median(during) <= statistics.median(before) * 2 + 0.1, (before, during)
        assert max(during) < 2.0
    finally:
        if runtime is not None:
            await runtime.stop()
        await stage.store.close()
        await dc.stop()
        await tg.stop()
