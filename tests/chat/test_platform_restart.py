"""One platform stopped and started again inside the running process (what a process does when it
loses a platform's lock and wins it back): its bot answers and its messages go out again, the
other platform is not disturbed, and nothing is sent twice."""

from __future__ import annotations

from pathlib import Path

from floorbridge.adapters.chat_runtime import command_descriptions
from floorbridge.adapters.discord.bot import DiscordAdapter
from floorbridge.adapters.telegram.bot import TelegramAdapter
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

from .conftest import eventually, open_stage, settings

DELEGATE = 4242


async def test_a_platform_stopped_and_started_again_answers_and_delivers_again(tmp_path: Path) -> None:
    stage = await open_stage(tmp_path)
    try:
        async with FakeTelegram() as tg, FakeDiscord() as dc:
            channel = dc.add_channel(dc.add_guild("delegates"), "announcements")
            runtime = stage.runtime(settings())
            runtime.add(TelegramAdapter(tg.token, base_url=tg.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                                        poll_timeout=1))
            runtime.add(DiscordAdapter(dc.token, replies=runtime.replies_for(Platform.DISCORD),
                                       commands=command_descriptions(), api_url=dc.api_url,
                                       gateway_url=dc.gateway_url, guild_ready_timeout=0.05))
            await runtime.start()
            try:
                def sent(text: str) -> list[str]:
                    texts = [s.plain_text or s.text or "" for s in tg.sent]
                    texts += [c["content"] for c in dc.created if c["source"] == "rest"]
                    return [t for t in texts if text in t]

                async def wave(label: str) -> None:
                    await stage.chats.enqueue([
                        OutgoingMessage(ChatRef(Platform.TELEGRAM, str(DELEGATE)), message(p(f"{label} telegram")),
                                        dedup_key=f"{label}:t"),
                        OutgoingMessage(ChatRef(Platform.DISCORD, channel), message(p(f"{label} discord")),
                                        dedup_key=f"{label}:d"),
                    ])
                    runtime.engine.notify()

                await wave("first")
                await eventually(lambda: len(sent("first")) == 2, what="the first wave delivered")
                identified = len(dc.identifies)

                for platform in ("telegram", "discord"):
                    await runtime.stop_platform(platform)
                assert runtime.running() == set()
                await wave("second")  # waits in the outbox while nobody runs the platforms
                for platform in ("telegram", "discord"):
                    await runtime.start_platform(platform)
                assert runtime.running() == {Platform.TELEGRAM, Platform.DISCORD}

                await eventually(lambda: len(sent("second")) == 2, what="the second wave delivered after the restart")
                assert len(dc.identifies) == identified + 1  # the Discord bot is on the gateway again
                answered = len([s for s in tg.sent if s.chat_id == DELEGATE])
                tg.push_message(DELEGATE, DELEGATE, "/help")  # the Telegram bot polls again
                await eventually(lambda: len([s for s in tg.sent if s.chat_id == DELEGATE]) > answered,
                                 what="the Telegram bot answers after the restart")
                await wave("third")
                await eventually(lambda: len(sent("third")) == 2, what="the third wave delivered")
                assert len(sent("first")) == len(sent("second")) == 2  # nothing went twice
                stats = runtime.engine.workers[Platform.DISCORD].stats
                assert stats.sent == 3  # the counters of /metrics went on across the restart
            finally:
                await runtime.stop()
    finally:
        await stage.store.close()
