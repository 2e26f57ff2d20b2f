"""The web process's end of the link with its chat worker (a small aiohttp app on a Unix socket).

POST /floor: `{"calls": [{"meeting", "session", "command", "actor", "expected"}, …]}`, the lists-of-
speakers commands the worker's chats gave, handed to the floor service together (so they join one
group commit); the answer has one result per call, in order: `{"outcome": …}`, `{"refused": …}`
(the rules, a change that came first, an unknown session: what the delegate is told) or
`{"failed": "…"}` (storage down; logged here).

GET /wake: a stream of lines, each naming the platforms (comma-separated, or `*` for all) whose
outbox rows this process has just written, so the worker sends them at once instead of at its
next poll. A line `*` opens every stream (anything written before it connected).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from floorbridge.core import floor_codec
from floorbridge.core.chats import Platform
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.ports import FloorDesk
from floorbridge.core.speakers import QueueRefused, RequestFloor

log = logging.getLogger("floorbridge.worker")

ALL = "*"


class _Waker:
    """One open wake stream: the platforms named since its last line (a burst becomes one line)."""

    def __init__(self) -> None:
        self.pending: set[str] = {ALL}
        self.ready = asyncio.Event()
        self.ready.set()

    def add(self, names: Sequence[str]) -> None:
        self.pending.update(names)
        self.ready.set()

    def take(self) -> bytes:
        names, self.pending = self.pending, set()
        self.ready.clear()
        return (ALL if ALL in names else ",".join(sorted(names))).encode() + b"\n"


class FloorHost:
    def __init__(self, floor: FloorDesk, path: Path) -> None:
        self._floor = floor
        self._path = path
        self._wakers: set[_Waker] = set()
        self._streams: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/floor", self._calls)
        app.router.add_get("/wake", self._wake_stream)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self._path)).start()
        self._path.chmod(0o600)

    async def stop(self) -> None:
        for task in list(self._streams):  # the worker's stream would hold the runner's cleanup
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def wake(self, platforms: Sequence[Platform] | None = None) -> None:
        """Outbox rows were written here: tell the worker (what the delivery engine's notify is told)."""
        names = [ALL] if platforms is None else [p.value for p in platforms]
        for waker in self._wakers:
            waker.add(names)

    # ---------------------------------------------------------------- handlers

    async def _calls(self, request: web.Request) -> web.Response:
        try:
            calls = json.loads(await request.read())["calls"]
            parsed = [self._parse(c) for c in calls]
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"not a batch of list commands: {exc!r}"[:300]}, status=400)
        results = await asyncio.gather(*(self._one(*call) for call in parsed))
        return web.json_response({"results": results})

    @staticmethod
    def _parse(call: dict[str, Any]) -> tuple[MeetingId, SessionId, Any, Any, int | None]:
        expected = call.get("expected")
        if expected is not None and not isinstance(expected, int):
            raise TypeError("expected must be a whole number")
        return (MeetingId(str(call["meeting"])), SessionId(str(call["session"])),
                floor_codec.command_from_dict(call["command"]), floor_codec.actor_from_dict(call["actor"]), expected)

    async def _one(self, meeting: MeetingId, session: SessionId, command: Any, actor: Any,
                   expected: int | None) -> dict[str, Any]:
        try:
            if isinstance(command, RequestFloor):
                outcome = await self._floor.request(meeting, session, command, actor)
            else:
                outcome = await self._floor.act(meeting, session, command, actor, expected)
        except (QueueRefused, ConcurrentChange, NotFound) as exc:
            return {"refused": floor_codec.refusal_to_dict(exc)}
        except Exception as exc:  # storage away: the worker's caller hears it; the reason is logged here
            log.exception("a list command from the chat worker failed", extra={"session": session})
            return {"failed": f"{type(exc).__name__}: the list of speakers could not be stored"}
        return {"outcome": floor_codec.outcome_to_dict(outcome)}

    async def _wake_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        waker = _Waker()
        self._wakers.add(waker)
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            while True:
                await waker.ready.wait()
                await response.write(waker.take())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._wakers.discard(waker)
            if task is not None:
                self._streams.discard(task)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
