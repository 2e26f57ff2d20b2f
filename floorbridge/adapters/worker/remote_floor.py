"""The chat worker's end of the link with the web process.

RemoteFloor is the lists of speakers as the worker's conversation uses them (core.ports.FloorDesk).
Changes go to the web process, which keeps the lists: the commands that arrive while a batch is on
its way go together in the next one (as the floor service's own group commit does), each caller
answered with its own outcome or refusal once the change is stored. A request's receipt time is
stamped here, when the chat command arrived, so the time it spends on the way does not count.
Reading (the `speakers` command, the list after a chair's action) is done here, from the
database: the list as the web process last stored it, read by the speakers changed since the copy
held (storage's `refresh`).

WakeListener follows the web process's wake stream and tells this process's delivery to look at
the outbox at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from floorbridge.core import floor_codec
from floorbridge.core.agenda import Session
from floorbridge.core.chats import Platform
from floorbridge.core.errors import FloorbridgeError
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.ports import AgendaStore, SpeakerStore
from floorbridge.core.speakers import Actor, Command, Outcome, RequestFloor, SpeakerList
from floorbridge.core.tasks import cancel_and_wait

from ..floor_service import PublishedSessions
from ..storage.group_commit import GroupCommit

log = logging.getLogger("floorbridge.worker")

CALL_TIMEOUT = 60.0  # seconds for a batch to be stored; the web process's own commits take milliseconds


class FloorUnavailable(FloorbridgeError):
    """The web process that keeps the lists of speakers could not store a change (it is restarting,
    or its database is away)."""


@dataclass(frozen=True)
class _Call:
    meeting: MeetingId
    session: SessionId
    command: Command
    actor: Actor
    expected: int | None


class RemoteFloor:
    def __init__(self, socket: Path, store: SpeakerStore, agenda: AgendaStore, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._socket = socket
        self._store = store
        self._sessions = PublishedSessions(agenda)
        self._clock = clock
        self._lists: dict[tuple[MeetingId, SessionId], SpeakerList] = {}
        self._calls: GroupCommit[_Call, Outcome | FloorbridgeError] = GroupCommit(self._send)
        self._client: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ---------------------------------------------------------------- FloorDesk

    async def session(self, meeting_id: MeetingId, session_id: SessionId) -> tuple[Meeting, Session]:
        return await self._sessions.get(meeting_id, session_id)

    async def view(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList:
        await self.session(meeting_id, session_id)
        key = (meeting_id, session_id)
        held = self._lists.get(key)
        if held is None:
            fresh = await self._store.load_list(meeting_id, session_id) or SpeakerList(meeting_id, session_id)
        else:
            fresh = await self._store.refresh(held)
        self._lists[key] = fresh
        return fresh.snapshot()

    async def request(self, meeting_id: MeetingId, session_id: SessionId, command: RequestFloor,
                      actor: Actor) -> Outcome:
        if command.requested_at is None:
            command = replace(command, requested_at=self._clock())
        return await self._submit(_Call(meeting_id, session_id, command, actor, None))

    async def act(self, meeting_id: MeetingId, session_id: SessionId, command: Command, actor: Actor,
                  expected_version: int | None = None) -> Outcome:
        return await self._submit(_Call(meeting_id, session_id, command, actor, expected_version))

    async def _submit(self, call: _Call) -> Outcome:
        result = await self._calls.submit(call)
        if isinstance(result, FloorbridgeError):
            raise result
        return result

    # ---------------------------------------------------------------- the link

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self._socket)),
                                                 timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
        return self._client

    async def _send(self, batch: Sequence[_Call]) -> list[Outcome | FloorbridgeError]:
        body = {"calls": [{"meeting": c.meeting, "session": c.session,
                           "command": floor_codec.command_to_dict(c.command),
                           "actor": floor_codec.actor_to_dict(c.actor), "expected": c.expected} for c in batch]}
        try:
            async with self._session().post("http://web/floor", json=body) as response:
                answer = await response.json()
                if response.status != 200:
                    raise FloorUnavailable(f"the web process refused the batch ({response.status}: "
                                           f"{answer.get('error', '')})")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise FloorUnavailable(f"the lists of speakers cannot be reached now ({type(exc).__name__}); "
                                   "try again in a moment") from exc
        return [self._result(r) for r in answer["results"]]

    @staticmethod
    def _result(result: dict[str, Any]) -> Outcome | FloorbridgeError:
        if "outcome" in result:
            return floor_codec.outcome_from_dict(result["outcome"])
        if "refused" in result:
            return floor_codec.refusal_from_dict(result["refused"])
        return FloorUnavailable(str(result.get("failed", "the change could not be stored")))


class WakeListener:
    """Follows GET /wake of the web process; each line names the platforms to look at (`*`: all)."""

    def __init__(self, socket: Path, notify: Callable[[Sequence[Platform] | None], None], *,
                 retry_seconds: float = 0.5) -> None:
        self._socket = socket
        self._notify = notify
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="wake-listener")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def _tell(self, line: bytes) -> None:
        names = line.decode().strip()
        if not names:
            return
        if names == "*":
            self._notify(None)
            return
        known = {p.value: p for p in Platform}
        self._notify([known[n] for n in names.split(",") if n in known])

    async def _follow(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            try:
                async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self._socket)),
                                                 timeout=timeout) as client, \
                        client.get("http://web/wake") as response:
                    async for line in response.content:
                        self._tell(line)
            except (aiohttp.ClientError, OSError) as exc:
                log.debug("the web process's wake stream is away", extra={"reason": repr(exc)})
            self._notify(None)  # rows written while the stream was away: look once
            await asyncio.sleep(self._retry)
