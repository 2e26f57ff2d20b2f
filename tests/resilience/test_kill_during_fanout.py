"""kill -9 at 20 random moments of a 3,000-message fan-out, restarting each time: afterwards every
message is delivered; no duplicate on Matrix (transaction ids) and Discord (nonces), at most one
per kill on Telegram (a send whose answer the killed process never stored goes again).

The service runs as deployed (`run.py serve` in its own process, SQLite); the platforms are the
Telegram and Discord fakes and a real Synapse, served from this test process."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

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

TELEGRAM, DISCORD, MATRIX = 1000, 1800, 200  # 3,000 messages
KILLS = 20
MARK = "Fan-out message"

pytestmark = pytest.mark.timeout(600)


async def test_kill_9_twenty_times_during_a_fanout(platforms: Platforms, tmp_path: Path) -> None:
    tg, dc, hs = platforms
    channels = discord_channels(dc, DISCORD)
    bot, alice, rooms = await matrix_rooms(hs, MATRIX)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fb.db'}"
    await enqueue_fanout(url, telegram=TELEGRAM, channels=channels, rooms=rooms, mark=MARK, dedup="fanout", seed=7)

    config = write_config(tmp_path / "fb.yaml", platforms, bot, port=free_port(), database=url,
                          state_file=tmp_path / "matrix-state.json")
    env = service_env(platforms, bot)
    log = tmp_path / "service.log"

    rng = random.Random(2026)
    process = serve(config, env, log, "--no-seed")
    try:
        # Telegram's 30 messages a second make the fan-out last about 35 s: the kills are spread over it.
        at_kill: list[int] = []
        for _ in range(KILLS):
            # The web process starts in about a second and its chat worker, which sends, a second and
            # a half after that: each kill falls somewhere between just before and well into sending.
            await asyncio.sleep(rng.uniform(2.5, 4.5))
            at_kill.append(sum(telegram_sent(tg, MARK).values()) + sum(discord_sent(dc, MARK).values()))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            process = serve(config, env, log, "--no-seed")
        await until_delivered(platforms, MARK, TELEGRAM, DISCORD)
    finally:
        await stop([process])

    tg_counts, dc_counts = telegram_sent(tg, MARK), discord_sent(dc, MARK)
    # The kills fell inside the fan-out: messages went out between them, and it was not over.
    progress = [b - a for a, b in zip([0, *at_kill], at_kill, strict=False)]
    assert sum(1 for d in progress if d > 0) >= KILLS // 2, at_kill
    assert at_kill[-1] < TELEGRAM + DISCORD, at_kill
    matrix_counts = Counter(room for room, _ in await matrix_received(hs, alice, rooms, MARK, limit=50))
    assert len(tg_counts) == TELEGRAM, f"telegram: {TELEGRAM - len(tg_counts)} lost; see {log}"
    assert len(dc_counts) == DISCORD, f"discord: {DISCORD - len(dc_counts)} lost"
    assert len(matrix_counts) == MATRIX, f"matrix: {MATRIX - len(matrix_counts)} lost"
    assert duplicates(dc_counts) == 0
    assert duplicates(matrix_counts) == 0
    assert duplicates(tg_counts) <= KILLS
