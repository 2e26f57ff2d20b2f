"""What the resilience tests that run the service as deployed (`run.py serve`, in processes of its own)
share: the platforms' chats, a fan-out stored in the outbox, the service's configuration, environment
and processes, and what each platform received. The platforms themselves (the Telegram and Discord
fakes and a real Synapse) are the `platforms` fixture of conftest.py."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from floorbridge.adapters.storage import SqlChatStore, open_store
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.synapse import RegisteredUser, Synapse
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
Platforms = tuple[FakeTelegram, FakeDiscord, Synapse]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def discord_channels(dc: FakeDiscord, n: int) -> list[str]:
    """`n` text channels of one guild."""
    guild = dc.add_guild("delegates")
    return [dc.add_channel(guild, f"chan-{i}") for i in range(n)]


async def matrix_rooms(hs: Synapse, n: int) -> tuple[RegisteredUser, RegisteredUser, list[str]]:
    """The bot (its rate limit lifted) and alice, and `n` rooms alice made and the bot joined."""
    bot = await hs.register("floorbridge")
    alice = await hs.register("alice")
    await hs.override_ratelimit(bot, 0, 0)
    rooms = []
    for i in range(n):
        room = await hs.create_room(alice, name=f"room {i}", invite=[bot.user_id])
        await hs.join(bot, room)
        rooms.append(room)
    return bot, alice, rooms


async def enqueue_fanout(url: str, *, telegram: int, channels: Sequence[str], rooms: Sequence[str], mark: str,
                         dedup: str, seed: int) -> None:
    """Store (migrating the database first if need be) one message "`mark` n for <chat>" for each of
    `telegram` Telegram chats (10000 on), each channel and each room (a room listed twice gets two),
    in an order shuffled with `seed`, in one go."""
    targets = ([ChatRef(Platform.TELEGRAM, str(10_000 + n)) for n in range(telegram)]
               + [ChatRef(Platform.DISCORD, c) for c in channels] + [ChatRef(Platform.MATRIX, r) for r in rooms])
    random.Random(seed).shuffle(targets)
    store = await open_store(url)
    try:
        await SqlChatStore(store.engine).enqueue(
            [OutgoingMessage(chat, message(p(f"{mark} {n} for {chat.chat_id}")), dedup_key=f"{dedup}:{n}")
             for n, chat in enumerate(targets)])
    finally:
        await store.close()


def write_config(path: Path, platforms: Platforms, bot: RegisteredUser, *, port: int, database: str,
                 state_file: Path, level: str = "WARNING", poll_seconds: float = 0.2,
                 matrix_per_second: int = 1000, seed_meetings: bool = False, public_url: bool = False) -> Path:
    """The service's configuration file: every platform enabled, pointed at `platforms`. Without
    `seed_meetings` the configuration seeds no meeting."""
    tg, dc, hs = platforms
    server = f"port: {port}, public_url: 'http://127.0.0.1:{port}'" if public_url else f"port: {port}"
    path.write_text(
        f"server: {{{server}}}\n"
        f"database: {{url: '{database}'}}\n"
        f"logging: {{level: {level}}}\n"
        + ("" if seed_meetings else "meetings: {seed: []}\n")
        + f"bots: {{delivery_poll_seconds: {poll_seconds}}}\n"
        f"telegram: {{enabled: true, base_url: '{tg.base_url}'}}\n"
        f"discord: {{enabled: true, api_url: '{dc.api_url}', gateway_url: '{dc.gateway_url}'}}\n"
        f"matrix: {{enabled: true, homeserver: '{hs.url}', user_id: '{bot.user_id}',"
        f" messages_per_second: {matrix_per_second}, state_file: '{state_file}'}}\n"
    )
    return path


def service_env(platforms: Platforms, bot: RegisteredUser) -> dict[str, str]:
    """This process's environment and the platforms' tokens."""
    tg, dc, _ = platforms
    return {**os.environ, "FLOORBRIDGE_TELEGRAM_TOKEN": tg.token, "FLOORBRIDGE_DISCORD_TOKEN": dc.token,
            "FLOORBRIDGE_MATRIX_TOKEN": bot.access_token}


def serve(config: Path, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`run.py serve` (with `args`) in a process of its own, its output appended to `log`."""
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve", *args],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def stop(processes: Sequence[subprocess.Popen[bytes]], within: float = 30) -> list[int | None]:
    """SIGTERM to each process still running, then each one's exit code; None for one that had not
    exited `within` seconds later (it is killed). Waits without blocking the loop: the fakes in it
    answer the processes' last requests."""
    for process in processes:
        process.send_signal(signal.SIGTERM)  # (nothing, for one that has exited)
    codes: list[int | None] = []
    for process in processes:
        deadline = time.monotonic() + within
        while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 (a child process has no event)
            await asyncio.sleep(0.1)
        codes.append(process.poll())
        if codes[-1] is None:
            process.kill()
    return codes


def telegram_sent(tg: FakeTelegram, mark: str) -> Counter[str]:
    """Messages containing `mark` sent to each Telegram chat."""
    return Counter(str(s.chat_id) for s in tg.sent if mark in (s.plain_text or s.text or ""))


def discord_sent(dc: FakeDiscord, mark: str) -> Counter[str]:
    """Messages containing `mark` posted (over REST) to each Discord channel."""
    return Counter(str(c["channel_id"]) for c in dc.created if c["source"] == "rest" and mark in c["content"])


async def matrix_received(hs: Synapse, user: RegisteredUser, rooms: Sequence[str], mark: str,
                          limit: int) -> list[tuple[str, str]]:
    """(room, body) of each message containing `mark` among the last `limit` of each room, as `user` sees them."""
    out = []
    for room in rooms:
        for event in await hs.messages(user, room, limit=limit):
            body = event["content"].get("body", "")
            if mark in body:
                out.append((room, body))
    return out


async def until_delivered(platforms: Platforms, mark: str, telegram: int, discord: int, within: float = 240) -> None:
    """Until `telegram` Telegram chats and `discord` Discord channels have had `mark` (or `within`
    seconds have passed: the caller's assertions say what is missing), then 3 s more, in which
    Matrix's last sends, and anything sent twice, arrive."""
    tg, dc, _ = platforms
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(telegram_sent(tg, mark)) == telegram and len(discord_sent(dc, mark)) == discord:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)


def duplicates(counts: Counter[str]) -> int:
    """Deliveries beyond the first, over every key."""
    return sum(n - 1 for n in counts.values())
