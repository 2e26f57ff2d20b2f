"""Fixtures for browser tests: a real headless Chromium (Debian's ``chromium`` package) driven by Playwright.

Playwright never downloads a browser of its own here: it launches the Chromium found by
:func:`chromium_executable` (``$FLOORBRIDGE_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH).
``scripts/test-services.sh`` (run by ``make unit``/``make test``) installs it when it is missing.

Loop scope: one Chromium is launched per test session, in pytest-asyncio's *session* event loop, and every
Playwright object (browser, context, page, locators) belongs to that loop. So every test module using these
fixtures must run its tests in the session loop::

    pytestmark = pytest.mark.asyncio(loop_scope="session")

and any async fixture such a test uses (a store, an app, a server) must run in that loop too::

    @pytest_asyncio.fixture(loop_scope="session")   # function-scoped, session loop
    async def console_app(...): ...

A test that uses ``browser``/``browser_context``/``page`` from another loop fails at setup with a message
saying so (instead of hanging on futures of the wrong loop).

Fixtures:
- ``chromium_executable`` (session, sync): the path of the Chromium binary; fails if there is none.
- ``browser`` (session): the launched ``playwright.async_api.Browser``.
- ``browser_context`` (function): a fresh ``BrowserContext`` (own cookies/storage), closed after the test.
- ``page`` (function): a ``Page`` in ``browser_context``. If the test fails, a screenshot is saved to
  ``/tmp/floorbridge-browser-failures/<test>.png`` and the page's console messages and JS errors are printed
  (pytest shows them under "Captured stdout teardown").
- ``serve_app`` (function, session loop): ``await serve_app(app)`` serves an ``aiohttp.web.Application`` on
  127.0.0.1 at a free port and returns its base URL (``http://127.0.0.1:PORT``); stopped after the test.

Waiting: use Playwright's auto-waiting assertions (``from playwright.async_api import expect``;
``await expect(page.locator("#x")).to_have_text("...")``), which retry until the timeout (5 s by default,
``expect(..., timeout=...)`` or ``expect.set_options(timeout=...)``), also for text pushed later by
server-sent events. Never ``asyncio.sleep`` for the page.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Error, Page, async_playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"
FAILURE_DIR = Path("/tmp/floorbridge-browser-failures")
# Playwright's own default for actions and navigation is 30 s; a hung page should fail sooner than that.
ACTION_TIMEOUT_MS = 15_000
LAUNCH_ARGS = [
    "--no-sandbox",  # we run as root in containers, where Chromium's sandbox cannot start
    "--disable-dev-shm-usage",  # /dev/shm is small in containers; use /tmp instead
]
BROWSER_FIXTURES = frozenset({"browser", "browser_context", "page"})

_call_reports = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    if isinstance(report, pytest.TestReport) and report.when == "call":
        item.stash[_call_reports] = report
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail fast, and clearly, when a test would use the session-loop browser from another event loop."""
    if not BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return
    marker = item.get_closest_marker("asyncio")
    loop_scope = (marker.kwargs.get("loop_scope") if marker else None) or item.config.getini(
        "asyncio_default_test_loop_scope"
    ) or "function"
    if loop_scope != "session":
        pytest.fail(
            f"{item.nodeid} uses the browser fixtures but runs in a {loop_scope}-scoped event loop; the browser "
            'lives in the session loop: add `pytestmark = pytest.mark.asyncio(loop_scope="session")` to the module '
            '(and give its async fixtures `@pytest_asyncio.fixture(loop_scope="session")`)',
            pytrace=False,
        )


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium: ``$FLOORBRIDGE_CHROMIUM``, else /usr/bin/chromium, else ``chromium`` on PATH."""
    configured = os.environ.get("FLOORBRIDGE_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"FLOORBRIDGE_CHROMIUM={configured!r} is not an executable file", pytrace=False)
        return configured
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail(
        "no Chromium for the browser tests: run `bash scripts/test-services.sh` (it installs Debian's `chromium` "
        "package), or set FLOORBRIDGE_CHROMIUM to a Chromium binary",
        pytrace=False,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(
    browser: Browser, serve_app: Callable[[web.Application], Awaitable[str]]
) -> AsyncIterator[BrowserContext]:
    # Depending on serve_app orders the teardowns: pages close (and drop their EventSource streams)
    # before the servers stop, which would otherwise wait on those open streams.
    context = await browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    new_page = await browser_context.new_page()
    log: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        log.append(f"console.{message.type}: {message.text}")

    def on_page_error(error: Error) -> None:
        log.append(f"page error: {error}")

    new_page.on("console", on_console)
    new_page.on("pageerror", on_page_error)
    yield new_page
    report = request.node.stash.get(_call_reports, None)
    if report is not None and report.failed and not new_page.is_closed():
        await _record_failure(new_page, request.node.nodeid, log)


async def _record_failure(page: Page, nodeid: str, log: list[str]) -> None:
    path = FAILURE_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_") + ".png")
    print(f"page URL at failure: {page.url}")
    try:
        await page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    except Error as exc:  # the page may have crashed; the test's own failure is what matters
        print(f"no screenshot: {exc}")
    print("\n".join(log) if log else "(no console messages)")


@pytest_asyncio.fixture(loop_scope="session")
async def serve_app() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    servers: list[TestServer] = []

    async def serve(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        # TestServer cancels a handler whose client went away (the EventSource of a closed page); the short
        # shutdown timeout keeps a stream still open at teardown from holding the test for aiohttp's 60 s.
        await server.start_server(shutdown_timeout=2)
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    try:
        yield serve
    finally:
        for server in reversed(servers):
            await server.close()
