"""The chat worker's own small server (a Unix socket beside the web process's), and the web
process's client of it.

GET /delivery: the worker's DeliveryReport (which platforms it runs, its delivery figures), read by
the web process's /metrics at each scrape.
POST /telegram/webhook: Telegram's webhook calls, which reach the web server and are handed on
as they came (the secret-token header included) to the Telegram bot, which runs here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from floorbridge.delivery.engine import DeliveryReport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What the worker answers within: a scrape or a webhook call waits no longer for a worker that hangs.
ANSWER_SECONDS = 5.0


class WorkerHost:
    def __init__(self, path: Path, report: Callable[[], DeliveryReport],
                 webhooks: dict[str, Handler]) -> None:
        self._path = path
        self._report = report
        self._webhooks = webhooks
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/delivery", self._delivery)
        for route, handler in self._webhooks.items():
            app.router.add_post(route, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self._path)).start()
        self._path.chmod(0o600)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _delivery(self, request: web.Request) -> web.Response:
        return web.json_response(self._report().to_dict())


class WorkerClient:
    """The web process's side: the worker's report, and webhook calls handed on to it."""

    def __init__(self, path: Path, platforms: list[str]) -> None:
        self._path = path
        self._platforms = platforms  # the enabled ones: shown as not running while the worker is away
        self._client: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self._path)),
                                                 timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS))
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def report(self) -> DeliveryReport:
        try:
            async with self._session().get("http://worker/delivery") as response:
                return DeliveryReport.from_dict(await response.json())
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
            return DeliveryReport({p: False for p in self._platforms})

    def forward(self, route: str) -> Handler:
        """A handler for the web server that hands each call of `route` to the worker."""

        async def handler(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")}
            try:
                async with self._session().post(f"http://worker{route}", data=body, headers=headers) as answer:
                    return web.Response(status=answer.status, body=await answer.read(),
                                        content_type=answer.content_type)
            except (aiohttp.ClientError, TimeoutError):
                # Telegram calls again later when the answer is not 2xx: nothing is lost.
                return web.json_response({"error": "the chat worker is not running; try again"}, status=503,
                                         headers={"Retry-After": "5"})

        return handler
