#!/usr/bin/env python3
"""Chat fan-out benchmark (issue 3).

One publish that concerns every subscriber: 1,000 Telegram chats and 1,000 Discord channels
(the fakes of tests/fakes, enforcing Telegram's 30 messages/s and 1/s per chat and Discord's 50
requests/s with real 429s) and 200 rooms on a real Synapse whose limit for the bot is set with
`override_ratelimit` to 10 messages/s, burst 10. The real client libraries send through the
real delivery engine from a SQLite outbox. For each platform: achieved send rate (announcements
after the first, over the time from the first to the last) divided by the enforced limit, 429
answers received, messages lost and duplicated. Then 200 delegates per platform send a command
at once; the reply latency (command in, reply out at the platform) gives p50 and p99.

Last line: {"telegram": {"rate_ratio", "http_429", "lost", "duplicates"}, "discord": {…},
"matrix": {…}, "reply_p50_ms", "reply_p99_ms"}.

Usage: .venv/bin/python bench/fanout.py [--telegram 1000] [--discord 1000] [--matrix 200] [--delegates 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ is not a package path: its queue.py would shadow the standard library's queue.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from floorbridge.adapters.chat_runtime import ChatRuntime, command_descriptions  # noqa: E402
from floorbridge.adapters.discord.bot import DiscordAdapter  # noqa: E402
from floorbridge.adapters.matrix.bot import MatrixAdapter  # noqa: E402
from floorbridge.adapters.telegram.bot import TelegramAdapter  # noqa: E402
from floorbridge.core.chats import ChatRef, Platform  # noqa: E402
from floorbridge.delivery.limits import AdaptiveLimiter, DiscordLimiter, TelegramLimiter  # noqa: E402
from tests.chat.conftest import open_stage, settings  # noqa: E402
from tests.fakes.discord_api import FakeDiscord  # noqa: E402
from tests.fakes.synapse import Synapse  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

MARK = "Agenda updated"
LIMITS = {"telegram": 30.0, "discord": 50.0, "matrix": 10.0}


def rate_ratio(times: list[float], limit: float) -> float:
    times = sorted(times)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return round((len(times) - 1) / (times[-1] - times[0]) / limit, 3)


def counts(chats: list[str], delivered: list[str]) -> dict[str, int]:
    seen = Counter(delivered)
    return {"lost": sum(1 for c in chats if seen[c] == 0), "duplicates": sum(n - 1 for n in seen.values() if n > 1)}


async def wait(condition: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="fb-fanout-"))
    stage = await open_stage(tmp)
    telegram_chats = [str(10_000 + n) for n in range(args.telegram)]
    tg = FakeTelegram()
    dc = FakeDiscord()
    hs = Synapse(tmp / "synapse")
    await tg.start()
    await dc.start()
    await hs.start()
    try:
        guilds = [dc.add_guild(f"delegates {g}") for g in range(max(1, (args.discord + 199) // 200))]
        discord_channels = [dc.add_channel(guilds[n // 200], f"chan-{n}") for n in range(args.discord)]
        delegate_user = dc.add_user("delegate")

        print(f"creating {args.matrix} Matrix rooms…", file=sys.stderr)
        bot = await hs.register("floorbridge")
        alice = await hs.register("alice")
        rooms = []
        for n in range(args.matrix):
            room = await hs.create_room(alice, name=f"room {n}", invite=[bot.user_id])
            await hs.join(bot, room)
            rooms.append(room)
        await asyncio.sleep(1.5)  # let the joins' share of the bot's burst refill
        await hs.override_ratelimit(bot, 10, 10)
        await asyncio.sleep(1.5)

        for chat in telegram_chats:
            await stage.subscribe(ChatRef(Platform.TELEGRAM, chat))
        for channel in discord_channels:
            await stage.subscribe(ChatRef(Platform.DISCORD, channel))
        for room in rooms:
            await stage.subscribe(ChatRef(Platform.MATRIX, room))

        runtime: ChatRuntime = stage.runtime(settings())
        runtime.add(TelegramAdapter(tg.token, base_url=tg.base_url, replies=runtime.replies_for(Platform.TELEGRAM),
                                    poll_timeout=1), limiter=TelegramLimiter(30, 1.0, 20),
                    concurrency=settings().telegram.in_flight)  # as the service runs it
        runtime.add(DiscordAdapter(dc.token, replies=runtime.replies_for(Platform.DISCORD),
                                   commands=command_descriptions(), api_url=dc.api_url, gateway_url=dc.gateway_url,
                                   guild_ready_timeout=0.05), limiter=DiscordLimiter(50))
        runtime.add(MatrixAdapter(hs.url, bot.user_id, bot.access_token, replies=runtime.replies_for(Platform.MATRIX),
                                  state_file=tmp / "matrix-state.json", sync_timeout_ms=1000),
                    limiter=AdaptiveLimiter(10))
        await runtime.start()
        try:
            print("publishing…", file=sys.stderr)
            await stage.publish_change(runtime)

            def tg_times() -> list[tuple[float, str]]:
                return [(s.at, str(s.chat_id)) for s in tg.sent if MARK in (s.plain_text or s.text or "")]

            def dc_times() -> list[tuple[float, str]]:
                return [(c["time"], str(c["channel_id"])) for c in dc.created
                        if c["source"] == "rest" and (MARK in c["content"] or MARK in json.dumps(c["payload"]))]

            async def all_out() -> bool:
                worker = runtime.engine.workers
                return all(w.idle for w in worker.values()) and len(tg_times()) >= args.telegram and \
                    len(dc_times()) >= args.discord

            await wait(all_out, 600, "the fan-out")
            await asyncio.sleep(2)  # anything late or duplicated shows up now
            matrix_times: list[tuple[float, str]] = []
            for room in rooms:
                for event in await hs.messages(alice, room):
                    if event["sender"] == bot.user_id and MARK in event["content"].get("body", ""):
                        matrix_times.append((event["origin_server_ts"] / 1000, room))
            result: dict[str, Any] = {}
            for name, times, chats, four_twenty_nine in (
                ("telegram", tg_times(), telegram_chats, tg.http_429),
                ("discord", dc_times(), discord_channels, dc.http_429),
                ("matrix", matrix_times, rooms, runtime.engine.workers[Platform.MATRIX].stats.rate_limited),
            ):
                result[name] = {
                    "rate_ratio": rate_ratio([t for t, _ in times], LIMITS[name]),
                    "http_429": four_twenty_nine,
                    **counts(chats, [c for _, c in times]),
                    "messages": len(times),
                }
                print(f"{name:9} {len(times)} announcements, {result[name]}", file=sys.stderr)

            print(f"{args.delegates} delegates per platform send a command at once…", file=sys.stderr)
            latencies: list[float] = []
            n = args.delegates
            tg_chats = telegram_chats[:n]
            before_tg = len(tg.sent)
            t0 = time.monotonic()
            for chat in tg_chats:
                tg.push_message(int(chat), int(chat), "/now")
            interactions = {dc.push_slash_command(guilds[i // 200 % len(guilds)], discord_channels[i],
                                                  delegate_user, "now"): time.monotonic()
                            for i in range(min(n, len(discord_channels)))}
            sent_at = {}
            for room in rooms[:n]:
                sent_at[room] = time.time()
                await hs.send_text(alice, room, "!now")

            async def replies_in() -> bool:
                tg_done = {str(s.chat_id) for s in tg.sent[before_tg:]} >= set(tg_chats)
                dc_done = all(dc.interaction_responses.get(i) for i in interactions)
                return tg_done and dc_done and runtime.engine.workers[Platform.MATRIX].idle

            await wait(replies_in, 300, "the replies")
            first_reply: dict[str, float] = {}
            for s in tg.sent[before_tg:]:
                first_reply.setdefault(str(s.chat_id), s.at)
            latencies += [first_reply[c] - t0 for c in tg_chats]
            for iid, asked in interactions.items():
                latencies.append(min(r["time"] for r in dc.interaction_responses[iid]) - asked)
            for room, asked in sent_at.items():
                answers = [e["origin_server_ts"] / 1000 for e in await hs.messages(alice, room)
                           if e["sender"] == bot.user_id and MARK not in e["content"].get("body", "")]
                if answers:
                    latencies.append(max(min(answers) - asked, 0.0))
            latencies.sort()
            result["reply_p50_ms"] = round(statistics.median(latencies) * 1000, 1)
            result["reply_p99_ms"] = round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1)
            result["replies_measured"] = len(latencies)
            return result
        finally:
            await runtime.stop()
    finally:
        await stage.store.close()
        await hs.stop()
        await dc.stop()
        await tg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--telegram", type=int, default=1000)
    parser.add_argument("--discord", type=int, default=1000)
    parser.add_argument("--matrix", type=int, default=200)
    parser.add_argument("--delegates", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(run(args))
    summary = {k: result[k] for k in ("telegram", "discord", "matrix", "reply_p50_ms", "reply_p99_ms")}
    for name in ("telegram", "discord", "matrix"):
        summary[name] = {k: summary[name][k] for k in ("rate_ratio", "http_429", "lost", "duplicates")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
