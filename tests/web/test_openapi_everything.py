"""With every service on (speaker queue, speaking slots, console), the OpenAPI document still
describes every /api/ and /ical/ route the server answers, and stays valid OpenAPI 3.1."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate

from floorbridge.adapters.floor_service import FloorService
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.storage import SqlConsoleStore, SqlSlotStore, SqlSpeakerStore, open_store
from floorbridge.adapters.web.console_auth import ConsoleAuth
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.chats import Staff

PUBLIC = "https://bridge.example.org"


async def test_every_api_route_of_the_full_server_is_documented(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/fb.db")
    snapshots = Snapshots(store, poll_seconds=3600)
    await snapshots.start()
    floor = FloorService(SqlSpeakerStore(store.engine), store)
    app = create_app(snapshots, WebOptions(PUBLIC), floor_desk=floor, speaker_store=floor.store,
                     console=ConsoleAuth(SqlConsoleStore(store.engine), Staff({}), public_url=PUBLIC),
                     slots=SlotService(SqlSlotStore(store.engine), store))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as client:
            doc = await (await client.get(server.make_url("/api/v1/openapi.json"))).json()
        validate(doc)
        documented = set(doc["paths"])
        served = set()
        for resource in app.router.resources():
            path = resource.canonical
            if path.startswith(("/api/", "/ical/")):
                served.add(re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path))  # {meeting:[a-z0-9-]+} -> {meeting}
        assert "/api/v1/meetings/{meeting}/sessions/{session}/speakers/actions" in served  # the queue is on
        assert "/api/v1/meetings/{meeting}/slot-requests/{ref}/review" in served  # and the slots
        assert served - documented == set()
        for path, item in doc["paths"].items():
            for method, op in item.items():
                assert op.get("summary"), f"{method.upper()} {path} has no summary"
    finally:
        await server.close()
        await snapshots.stop()
        await store.close()
