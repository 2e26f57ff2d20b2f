"""The browser chain works: Debian's headless Chromium, driven by Playwright, runs JS, clicks and server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>smoke</title></head>
<body>
  <button id="go" type="button">Go</button>
  <p id="status">waiting</p>
  <p id="pushed">no event yet</p>
  <script>
    document.getElementById("go").addEventListener("click", () => {
      document.getElementById("status").textContent = "clicked";
    });
    const events = new EventSource("/events");
    events.addEventListener("speaker", (event) => {
      document.getElementById("pushed").textContent = "speaker: " + JSON.parse(event.data).name;
    });
  </script>
</body>
</html>
"""


async def index(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(b'event: speaker\ndata: {"name": "Delegate of Ghana"}\n\n')
    # Keep the stream open, as a live feed does, so the browser does not reconnect; the handler is
    # cancelled when the page goes away.
    await asyncio.Event().wait()
    return response


def smoke_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    return app


async def test_click_and_server_sent_event(
    page: Page, serve_app: Callable[[web.Application], Awaitable[str]]
) -> None:
    base_url = await serve_app(smoke_app())
    await page.goto(base_url + "/")
    await expect(page).to_have_title("smoke")

    await expect(page.locator("#status")).to_have_text("waiting")
    await page.get_by_role("button", name="Go").click()
    await expect(page.locator("#status")).to_have_text("clicked")

    await expect(page.locator("#pushed")).to_have_text("speaker: Delegate of Ghana")
