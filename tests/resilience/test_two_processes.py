"""Two floorbridge processes on one PostgreSQL during a fan-out: each platform is run by exactly one
of them at a time, every message is delivered once; when the process that owns the Telegram
connection is killed (kill -9), the other takes Telegram over within 10 seconds and the fan-out
finishes. The only message that may go twice is the one Telegram send that was in flight at the
kill (`telegram.in_flight` is 1): its answer died with the process. Discord's nonces and Matrix's
transaction ids make a repeated send a no-op on those platforms.

The processes run as deployed (`run.py serve`, all roles); the platforms are the Telegram and
Discord fakes and a real Synapse, served from this test process."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from floorbridge.adapters.storage import SqlChatStore, open_store
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.synapse import Synapse
from tests.fakes.telegram_api import FakeTelegram
from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

ROOT = Path(__file__).resolve().parents[2]
TELEGRAM, DISCORD, MATRIX = 600, 600, 100
MARK = "Two-process message"
TAKEOVER_SECONDS = 10

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres]


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


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = await create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve", "--no-seed"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


RUNNING = re.compile(r'^floorbridge_platform_running\{platform="(\w+)"\} (\S+)$', re.M)


async def running(client: aiohttp.ClientSession, port: int) -> set[str] | None:
    """The platforms the process on `port` runs now, from its /metrics; None when it does not answer."""
    try:
        async with client.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)) as r:
            text = await r.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    return {platform for platform, value in RUNNING.findall(text) if float(value) == 1.0}


async def test_two_processes_share_a_fanout_and_one_takes_telegram_over_when_the_other_dies(
        platforms: tuple[FakeTelegram, FakeDiscord, Synapse], database: str, tmp_path: Path) -> None:
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

    store = await open_store(database)  # migrates
    try:
        targets = ([ChatRef(Platform.TELEGRAM, str(10_000 + n)) for n in range(TELEGRAM)]
                   + [ChatRef(Platform.DISCORD, c) for c in channels] + [ChatRef(Platform.MATRIX, r) for r in rooms])
        random.Random(11).shuffle(targets)
        await SqlChatStore(store.engine).enqueue(
            [OutgoingMessage(chat, message(p(f"{MARK} {n} for {chat.chat_id}")), dedup_key=f"two:{n}")
             for n, chat in enumerate(targets)])
    finally:
        await store.close()

    env = {**os.environ, "FLOORBRIDGE_TELEGRAM_TOKEN": tg.token, "FLOORBRIDGE_DISCORD_TOKEN": dc.token,
           "FLOORBRIDGE_MATRIX_TOKEN": bot.access_token}
    ports = [_free_port(), _free_port()]
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"service-{i}.log" for i in range(2)]
    for i, port in enumerate(ports):
        config = tmp_path / f"fb-{i}.yaml"
        config.write_text(
            f"server: {{port: {port}}}\n"
            f"database: {{url: '{database}'}}\n"
            "logging: {level: INFO}\n"
            "meetings: {seed: []}\n"
            "bots: {delivery_poll_seconds: 0.2}\n"
            f"telegram: {{enabled: true, base_url: '{tg.base_url}'}}\n"
            f"discord: {{enabled: true, api_url: '{dc.api_url}', gateway_url: '{dc.gateway_url}'}}\n"
            f"matrix: {{enabled: true, homeserver: '{hs.url}', user_id: '{bot.user_id}', messages_per_second: 1000,"
            f" state_file: '{tmp_path / f'matrix-state-{i}.json'}'}}\n"
        )
        processes.append(_start(config, env, logs[i]))

    def telegram_sent() -> Counter[str]:
        return Counter(str(s.chat_id) for s in tg.sent if MARK in (s.plain_text or s.text or ""))

    def discord_sent() -> Counter[str]:
        return Counter(str(c["channel_id"]) for c in dc.created if c["source"] == "rest" and MARK in c["content"])

    owners_seen: list[list[set[str] | None]] = []
    try:
        async with aiohttp.ClientSession() as client:
            # Both up; each platform run by exactly one of them, the whole time before the kill.
            deadline = time.monotonic() + 60
            while True:
                now = [await running(client, port) for port in ports]
                if all(x is not None for x in now) and sum(len(x or ()) for x in now) == 3:
                    break
                assert time.monotonic() < deadline, f"the processes did not share the platforms: {now}; see {logs}"
                await asyncio.sleep(0.2)
            while sum(telegram_sent().values()) < TELEGRAM // 4:
                now = [await running(client, port) for port in ports]
                owners_seen.append(now)
                assert not (now[0] or set()) & (now[1] or set()), f"a platform run twice: {now}"
                await asyncio.sleep(0.2)
            assert len(telegram_sent()) == sum(telegram_sent().values()), "sent twice while both ran"
            assert len(discord_sent()) == sum(discord_sent().values()), "sent twice while both ran"

            now = [await running(client, port) for port in ports]
            owner = next(i for i, platforms_here in enumerate(now) if "telegram" in (platforms_here or ()))
            other = 1 - owner
            before_kill = sum(telegram_sent().values())
            processes[owner].send_signal(signal.SIGKILL)
            processes[owner].wait(timeout=10)
            killed_at = time.monotonic()
            taken_over = None
            while time.monotonic() - killed_at < TAKEOVER_SECONDS + 20:
                if taken_over is None and "telegram" in (await running(client, ports[other]) or ()):
                    taken_over = time.monotonic() - killed_at
                if taken_over is not None and sum(telegram_sent().values()) > before_kill + 1:
                    break
                await asyncio.sleep(0.1)
            resumed = time.monotonic() - killed_at
            assert taken_over is not None and taken_over <= TAKEOVER_SECONDS, (
                f"telegram not taken over within {TAKEOVER_SECONDS} s (after {taken_over}); see {logs}")
            assert resumed <= TAKEOVER_SECONDS + 2, f"Telegram sends resumed only after {resumed:.1f} s"
            assert await running(client, ports[other]) == {"telegram", "discord", "matrix"}

            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if len(telegram_sent()) == TELEGRAM and len(discord_sent()) == DISCORD:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(3)  # Matrix's last sends, and anything sent twice, arrive now
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()

    tg_counts, dc_counts = telegram_sent(), discord_sent()
    matrix_counts: Counter[str] = Counter()
    for room in rooms:
        for event in await hs.messages(alice, room, limit=50):
            if MARK in event["content"].get("body", ""):
                matrix_counts[room] += 1
    assert len(tg_counts) == TELEGRAM, f"telegram: {TELEGRAM - len(tg_counts)} lost; see {logs}"
    assert len(dc_counts) == DISCORD, f"discord: {DISCORD - len(dc_counts)} lost; see {logs}"
    assert len(matrix_counts) == MATRIX, f"matrix: {MATRIX - len(matrix_counts)} lost; see {logs}"
    assert sum(n - 1 for n in dc_counts.values()) == 0
    assert sum(n - 1 for n in matrix_counts.values()) == 0
    assert sum(n - 1 for n in tg_counts.values()) <= 1  # the one send in flight at the kill
