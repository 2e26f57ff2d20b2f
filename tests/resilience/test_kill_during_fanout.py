"""kill -9 at 20 random moments of a 3,000-message fan-out, restarting each time: afterwards every
message is delivered; no duplicate on Matrix (transaction ids) and Discord (nonces), at most one
per kill on Telegram (a send whose answer the killed process never stored goes again).

The service runs as deployed (`run.py serve` in its own process, SQLite); the platforms are the
Telegram and Discord fakes and a real Synapse, served from this test process."""

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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from floorbridge.adapters.storage import SqlChatStore, open_store
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.synapse import Synapse
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
TELEGRAM, DISCORD, MATRIX = 1000, 1800, 200  # 3,000 messages
KILLS = 20
MARK = "Fan-out message"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, FakeDiscord, Synapse]]:
    tg, dc = FakeTelegram(), FakeDiscord()
    await tg.start()
    await dc.start()
    try:
        async with Synapse(tmp_path / "synapse") as hs:
            yield tg, dc, hs
    finally:
        await dc.stop()
        await tg.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve", "--no-seed"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_kill_9_twenty_times_during_a_fanout(platforms: tuple[FakeTelegram, FakeDiscord, Synapse],
                                                   tmp_path: Path) -> None:
    tg, dc, hs = platforms
    guild = dc.add_guild("delegates")
    channels = [dc.add_channel(guild, f"chan-{n}") for n in range(DISCORD)]
    bot = await hs.register("floorbridge")
    alice = await hs.register("alice")
    await hs.override_ratelimit(bot, 0, 0)
    rooms = []
    for n in range(MATRIX):
        room = await hs.create_room(alice, name=f"room {n}", invite=[bot.user_id])
        await hs.join(bot, room)
        rooms.append(room)

    db = tmp_path / "fb.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        targets = ([ChatRef(Platform.TELEGRAM, str(10_000 + n)) for n in range(TELEGRAM)]
                   + [ChatRef(Platform.DISCORD, c) for c in channels] + [ChatRef(Platform.MATRIX, r) for r in rooms])
        random.Random(7).shuffle(targets)
        await SqlChatStore(store.engine).enqueue(
            [OutgoingMessage(chat, message(p(f"{MARK} {n} for {chat.chat_id}")), dedup_key=f"fanout:{n}")
             for n, chat in enumerate(targets)])
    finally:
        await store.close()

    config = tmp_path / "fb.yaml"
    config.write_text(
        f"server: {{port: {_free_port()}}}\n"
        f"database: {{url: 'sqlite+aiosqlite:///{db}'}}\n"
        "logging: {level: WARNING}\n"
        "meetings: {seed: []}\n"
        "bots: {delivery_poll_seconds: 0.2}\n"
        f"telegram: {{enabled: true, base_url: '{tg.base_url}'}}\n"
        f"discord: {{enabled: true, api_url: '{dc.api_url}', gateway_url: '{dc.gateway_url}'}}\n"
        f"matrix: {{enabled: true, homeserver: '{hs.url}', user_id: '{bot.user_id}', messages_per_second: 1000,"
        f" state_file: '{tmp_path / 'matrix-state.json'}'}}\n"
    )
    env = {**os.environ, "FLOORBRIDGE_TELEGRAM_TOKEN": tg.token, "FLOORBRIDGE_DISCORD_TOKEN": dc.token,
           "FLOORBRIDGE_MATRIX_TOKEN": bot.access_token}
    log = tmp_path / "service.log"

    def telegram_sent() -> Counter[str]:
        return Counter(str(s.chat_id) for s in tg.sent if MARK in (s.plain_text or s.text or ""))

    def discord_sent() -> Counter[str]:
        return Counter(str(c["channel_id"]) for c in dc.created if c["source"] == "rest" and MARK in c["content"])

    rng = random.Random(2026)
    process = _start(config, env, log)
    try:
        # Telegram's 30 messages a second make the fan-out last about 35 s: the kills are spread over it.
        at_kill: list[int] = []
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.5, 3.5))  # a process starts in about a second, then sends
            at_kill.append(sum(telegram_sent().values()) + sum(discord_sent().values()))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            process = _start(config, env, log)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if len(telegram_sent()) == TELEGRAM and len(discord_sent()) == DISCORD:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # Matrix's last sends, and anything sent twice, arrive now
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    tg_counts, dc_counts = telegram_sent(), discord_sent()
    # The kills fell inside the fan-out: messages went out between them, and it was not over.
    progress = [b - a for a, b in zip([0, *at_kill], at_kill, strict=False)]
    assert sum(1 for d in progress if d > 0) >= KILLS // 2, at_kill
    assert at_kill[-1] < TELEGRAM + DISCORD, at_kill
    matrix_counts: Counter[str] = Counter()
    for room in rooms:
        for event in await hs.messages(alice, room, limit=50):
            if MARK in event["content"].get("body", ""):
                matrix_counts[room] += 1
    assert len(tg_counts) == TELEGRAM, f"telegram: {TELEGRAM - len(tg_counts)} lost; see {log}"
    assert len(dc_counts) == DISCORD, f"discord: {DISCORD - len(dc_counts)} lost"
    assert len(matrix_counts) == MATRIX, f"matrix: {MATRIX - len(matrix_counts)} lost"
    assert sum(n - 1 for n in dc_counts.values()) == 0
    assert sum(n - 1 for n in matrix_counts.values()) == 0
    assert sum(n - 1 for n in tg_counts.values()) <= KILLS
