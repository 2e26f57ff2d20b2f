"""While PostgreSQL cannot be reached, the web API answers 503 with Retry-After (not a 500), and
once it is back the same request succeeds. The database is reached through a TCP relay that this
test cuts: every open connection is dropped and new ones are refused, as when the server restarts
or the network goes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.storage import create_engine
from floorbridge.adapters.storage.engine import database_unavailable
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.app import services, web_options
from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
ASK = "/api/v1/meetings/wsis-2025/sessions/hls-statements-1/speakers/requests"


class Relay:
    """127.0.0.1:port -> PostgreSQL, which `cut()` takes away and `mend()` gives back."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def mend(self) -> None:
        await self.start()  # the same port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    name = await create_pg_database()
    relay = Relay()
    await relay.start()
    try:
        yield relay, pg_url(name).replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    finally:
        await relay.cut()
        await drop_pg_database(name)


async def test_while_the_database_is_away_the_api_says_503_and_works_again_after(
        relay: tuple[Relay, str], tmp_path: Path) -> None:
    cable, url = relay
    config = tmp_path / "floorbridge.yaml"
    config.write_text(json.dumps({"database": {"url": url},
                                  "meetings": {"seed": [str(ROOT / "config/meetings/wsis-2025.yaml")]}}))
    settings = load_settings(config, env={})
    async with services(settings) as svc:
        await svc.seed()
        snapshots = Snapshots(svc.store, poll_seconds=3600)
        await snapshots.start()
        app = create_app(snapshots, web_options(settings), floor_desk=svc.chat.floor, speaker_store=svc.speakers)
        server = TestServer(app)
        await server.start_server()
        try:
            async with ClientSession(base_url=str(server.make_url("/"))) as client:
                async with client.post(ASK, json={"name": "Amina Diallo", "delegation": "Kenya"}) as r:
                    assert r.status == 201, await r.text()
                await cable.cut()
                async with client.post(ASK, json={"name": "Kwame Mensah", "delegation": "Ghana"}) as r:
                    body = await r.json()
                    assert r.status == 503, body
                    assert body["error"]["code"] == "unavailable" and r.headers["Retry-After"] == "5"
                    assert "5432" not in json.dumps(body) and str(cable.port) not in json.dumps(body)
                await cable.mend()
                async with client.post(ASK, json={"name": "Kwame Mensah", "delegation": "Ghana"}) as r:
                    assert r.status == 201, await r.text()
                async with client.get(ASK.removesuffix("/requests")) as r:
                    listing = await r.json()
                assert [s["delegation"] for s in listing["waiting"]] == ["Kenya", "Ghana"]
        finally:
            await server.close()
            await snapshots.stop()


async def test_what_counts_as_the_database_being_away(relay: tuple[Relay, str]) -> None:
    cable, url = relay
    await cable.cut()
    engine = create_engine(url)
    try:
        with pytest.raises(Exception) as refused:
            async with engine.connect():
                pass
        assert database_unavailable(refused.value)
    finally:
        await engine.dispose()
    await cable.mend()
    engine = create_engine(url)
    try:
        with pytest.raises(Exception) as mistake:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT * FROM no_such_table")
        assert not database_unavailable(mistake.value)
    finally:
        await engine.dispose()
