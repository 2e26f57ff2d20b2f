"""Every web request's log lines carry its id, and the answer says it (X-Request-Id)."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from floorbridge.adapters.logs import JsonFormatter
from floorbridge.adapters.web.server import request_ids

from .conftest import Served


async def test_a_proxys_request_id_is_kept_and_a_bad_one_replaced(served: Served) -> None:
    r = await served.client.get("/api/v1/meetings", headers={"X-Request-Id": "edge-4f2a.9"})
    assert r.status == 200 and r.headers["X-Request-Id"] == "edge-4f2a.9"
    r = await served.client.get("/api/v1/meetings", headers={"X-Request-Id": "no spaces <allowed>"})
    assert len(r.headers["X-Request-Id"]) == 16 and " " not in r.headers["X-Request-Id"]
    r = await served.client.get("/api/v1/meetings/nope")
    assert r.status == 404 and len(r.headers["X-Request-Id"]) == 16


async def test_log_lines_written_while_answering_carry_the_id() -> None:
    lines: list[dict[str, object]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    log = logging.getLogger("floorbridge.test.request-ids")
    log.addHandler(Collect())
    log.setLevel(logging.INFO)

    async def handler(request: web.Request) -> web.Response:
        log.info("answering")
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_ids])
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/", headers={"X-Request-Id": "trace-1"})
        assert r.headers["X-Request-Id"] == "trace-1"
        await client.get("/")
    assert lines[0]["request_id"] == "trace-1"
    assert lines[1]["request_id"] not in (None, "trace-1")
