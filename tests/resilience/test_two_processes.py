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
import re
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.resilience.support import (
    Platforms,
    discord_channels,
    discord_sent,
    duplicates,
    enqueue_fanout,
    free_port,
    matrix_received,
    matrix_rooms,
    serve,
    service_env,
    stop,
    telegram_sent,
    until_delivered,
    write_config,
)
from tests.storage.conftest import pg_url

TELEGRAM, DISCORD, MATRIX = 600, 600, 100
MARK = "Two-process message"
TAKEOVER_SECONDS = 10

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres]


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
        platforms: Platforms, pg_database: str, tmp_path: Path) -> None:
    tg, dc, hs = platforms
    channels = discord_channels(dc, DISCORD)
    bot, alice, rooms = await matrix_rooms(hs, MATRIX)
    database = pg_url(pg_database)
    await enqueue_fanout(database, telegram=TELEGRAM, channels=channels, rooms=rooms, mark=MARK, dedup="two", seed=11)

    env = service_env(platforms, bot)
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"service-{i}.log" for i in range(2)]
    processes = [serve(write_config(tmp_path / f"fb-{i}.yaml", platforms, bot, port=port, database=database,
                                    state_file=tmp_path / f"matrix-state-{i}.json", level="INFO"),
                       env, logs[i], "--no-seed")
                 for i, port in enumerate(ports)]

    def telegram_total() -> int:
        return sum(telegram_sent(tg, MARK).values())

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
            while telegram_total() < TELEGRAM // 4:
                now = [await running(client, port) for port in ports]
                assert not (now[0] or set()) & (now[1] or set()), f"a platform run twice: {now}"
                await asyncio.sleep(0.2)
            assert duplicates(telegram_sent(tg, MARK)) == 0, "sent twice while both ran"
            assert duplicates(discord_sent(dc, MARK)) == 0, "sent twice while both ran"

            now = [await running(client, port) for port in ports]
            owner = next(i for i, platforms_here in enumerate(now) if "telegram" in (platforms_here or ()))
            other = 1 - owner
            before_kill = telegram_total()
            processes[owner].send_signal(signal.SIGKILL)
            processes[owner].wait(timeout=10)
            killed_at = time.monotonic()
            taken_over = None
            while time.monotonic() - killed_at < TAKEOVER_SECONDS + 20:
                if taken_over is None and "telegram" in (await running(client, ports[other]) or ()):
                    taken_over = time.monotonic() - killed_at
                if taken_over is not None and telegram_total() > before_kill + 1:
                    break
                await asyncio.sleep(0.1)
            resumed = time.monotonic() - killed_at
            assert taken_over is not None and taken_over <= TAKEOVER_SECONDS, (
                f"telegram not taken over within {TAKEOVER_SECONDS} s (after {taken_over}); see {logs}")
            assert resumed <= TAKEOVER_SECONDS + 2, f"Telegram sends resumed only after {resumed:.1f} s"
            assert await running(client, ports[other]) == {"telegram", "discord", "matrix"}

            await until_delivered(platforms, MARK, TELEGRAM, DISCORD)
    finally:
        await stop(processes)

    tg_counts, dc_counts = telegram_sent(tg, MARK), discord_sent(dc, MARK)
    matrix_counts = Counter(room for room, _ in await matrix_received(hs, alice, rooms, MARK, limit=50))
    assert len(tg_counts) == TELEGRAM, f"telegram: {TELEGRAM - len(tg_counts)} lost; see {logs}"
    assert len(dc_counts) == DISCORD, f"discord: {DISCORD - len(dc_counts)} lost; see {logs}"
    assert len(matrix_counts) == MATRIX, f"matrix: {MATRIX - len(matrix_counts)} lost; see {logs}"
    assert duplicates(dc_counts) == 0
    assert duplicates(matrix_counts) == 0
    assert duplicates(tg_counts) <= 1  # the one send in flight at the kill
