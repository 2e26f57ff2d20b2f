"""Fixtures of the resilience tests that run the service as deployed: the platforms it talks to, served
from the test process, and a fresh PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.fakes.discord_api import FakeDiscord
from tests.fakes.synapse import Synapse
from tests.fakes.telegram_api import FakeTelegram
from tests.resilience.support import Platforms
from tests.storage.conftest import create_pg_database, drop_pg_database


@pytest.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[Platforms]:
    """The Telegram and Discord fakes and a real Synapse."""
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
async def pg_database() -> AsyncIterator[str]:
    """The name of a fresh database, dropped afterwards (skipped, like the storage tests, when
    PostgreSQL is away and FLOORBRIDGE_SKIP_POSTGRES=1)."""
    try:
        name = await create_pg_database()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("FLOORBRIDGE_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable ({exc}) and FLOORBRIDGE_SKIP_POSTGRES=1")
        raise
    try:
        yield name
    finally:
        await drop_pg_database(name)
