"""Web acknowledgements first: chat work waits while a web request is answered, never longer
than the bound."""

from __future__ import annotations

import asyncio
import time

from floorbridge.adapters.web_first import WebFirst


async def test_chat_work_waits_for_the_web_request_in_flight() -> None:
    gate = WebFirst(max_defer=5)
    order: list[str] = []

    async def web() -> None:
        with gate.serving():
            await asyncio.sleep(0.05)
            order.append("web answered")

    async def chat() -> None:
        await asyncio.sleep(0.01)  # arrives while the web request is being answered
        await gate.yield_to_web()
        order.append("chat handled")

    await asyncio.gather(web(), chat())
    assert order == ["web answered", "chat handled"]


async def test_the_wait_is_bounded() -> None:
    gate = WebFirst(max_defer=0.05)
    with gate.serving():
        started = time.monotonic()
        await gate.yield_to_web()
        assert 0.04 <= time.monotonic() - started < 1
    started = time.monotonic()
    await gate.yield_to_web()  # nothing in flight: no wait
    assert time.monotonic() - started < 0.01
