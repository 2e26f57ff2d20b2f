"""The live lists of speakers of a running floorbridge: every request and moderator action from
every platform and the web goes through here.

Each list is kept in memory and changed by one committer at a time. Commands that arrive while a
commit is in flight wait together and are stored by the next commit in one transaction (group
commit), so thousands of requests a second cost tens of transactions, and each caller is answered
only once its change is stored. The receipt time is stamped when a command arrives, before any
waiting, and it is what orders requests. Another process changing the same list makes the stored
version differ: the list is reloaded and the batch applied again (commands that named the version
they were decided on are then refused, as they should be).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from floorbridge.core.agenda import Session
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import AgendaStore, SpeakerStore
from floorbridge.core.speakers import (
    Actor,
    Command,
    FloorNotice,
    Outcome,
    QueueRefused,
    RequestFloor,
    SpeakerList,
)
from floorbridge.core.tasks import cancel_and_wait

from .storage.group_commit import GroupCommit

log = logging.getLogger("floorbridge.floor")

ListKey = tuple[MeetingId, SessionId]
# Builds the chat messages for notices (the bots' wording, in each speaker's language).
NoticeWriter = Callable[[Meeting, Session, SpeakerList, Sequence[FloorNotice]], Awaitable[list[OutgoingMessage]]]
MAX_BATCH = 500
COMMIT_ATTEMPTS = 50  # against other processes storing the same list meanwhile


class PublishedSessions:
    """Sessions of the meetings' latest published agendas, by id. (The agenda store keeps the latest
    version in memory; this keeps its sessions by id.)"""

    def __init__(self, agenda: AgendaStore) -> None:
        self._agenda = agenda
        self._cached: dict[MeetingId, tuple[int, Meeting, dict[SessionId, Session]]] = {}

    async def get(self, meeting_id: MeetingId, session_id: SessionId) -> tuple[Meeting, Session]:
        """The session and its meeting; NotFound when the latest published agenda has no such session."""
        version = await self._agenda.latest_version(meeting_id)
        if version is None:
            raise NotFound(f"meeting {meeting_id!r} has no published agenda")
        cached = self._cached.get(meeting_id)
        if cached is None or cached[0] != version.number:
            meeting = await self._agenda.get_meeting(meeting_id)
            cached = (version.number, meeting, {ps.session.id: ps.session for ps in version.sessions})
            self._cached[meeting_id] = cached
        session = cached[2].get(session_id)
        if session is None:
            raise NotFound(f"there is no session {session_id!r} in {meeting_id}")
        return cached[1], session


@dataclass
class _Pending:
    command: Command
    actor: Actor
    at: datetime
    expected: int | None
    done: asyncio.Future[Outcome]


@dataclass
class _Slot:
    lst: SpeakerList | None = None
    stale: bool = False  # another process stored a later version: `lst` is refreshed before use
    pending: list[_Pending] = field(default_factory=list)
    committer: asyncio.Task[None] | None = None
    timer_sent: set[tuple[int, str]] = field(default_factory=set)
    watchers: set[asyncio.Queue[int]] = field(default_factory=set)
    confirm: GroupCommit[None, int | None] | None = None  # reads of the stored version (see view)


class FloorService:
    def __init__(
        self,
        store: SpeakerStore,
        agenda: AgendaStore,
        *,
        write_notices: NoticeWriter | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.agenda = agenda
        self.clock = clock
        self._write_notices = write_notices
        self._on_enqueued = on_enqueued
        self._tick_seconds = tick_seconds
        self._slots: dict[ListKey, _Slot] = {}
        self._receipts = itertools.count(1)
        self._ticker: asyncio.Task[None] | None = None
        self._sessions = PublishedSessions(agenda)
        self.actions: Counter[str] = Counter()  # stored changes by command ("RequestFloor", "Next"…), for /metrics

    # ---------------------------------------------------------------- lifetime

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="floor-timer")

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker)
        self._ticker = None
        for slot in self._slots.values():
            if slot.committer is not None:
                with contextlib.suppress(Exception):
                    await slot.committer

    # ---------------------------------------------------------------- reading

    async def session(self, meeting_id: MeetingId, session_id: SessionId) -> tuple[Meeting, Session]:
        return await self._sessions.get(meeting_id, session_id)

    async def view(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList:
        """A copy of the list as stored (an empty list for a session nobody has asked in yet).

        Where other processes write the lists too, the copy in memory is only answered once the
        stored version has been read (one read for everyone asking at once, started after each of
        them asked): a change another process acknowledged before this was asked is in the answer,
        though its notice (LISTEN/NOTIFY, a few milliseconds behind) has not arrived yet."""
        await self.session(meeting_id, session_id)
        key = (meeting_id, session_id)
        slot = self._slots.setdefault(key, _Slot())
        if slot.lst is not None and not slot.stale:
            if slot.confirm is None:
                slot.confirm = GroupCommit(functools.partial(self._stored_versions, key))
            stored = await slot.confirm.submit(None)
            if stored is not None and slot.lst is not None and stored > slot.lst.version:
                slot.stale = True
        return (await self._fresh(key, slot)).snapshot()

    async def _stored_versions(self, key: ListKey, asking: Sequence[None]) -> list[int | None]:
        version = await self.store.stored_version(*key)
        return [version] * len(asking)

    def watch(self, meeting_id: MeetingId, session_id: SessionId) -> asyncio.Queue[int]:
        """A queue that receives the list's version after every stored change (latest only matters)."""
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        self._slots.setdefault((meeting_id, session_id), _Slot()).watchers.add(queue)
        return queue

    def unwatch(self, meeting_id: MeetingId, session_id: SessionId, queue: asyncio.Queue[int]) -> None:
        slot = self._slots.get((meeting_id, session_id))
        if slot is not None:
            slot.watchers.discard(queue)

    def changed_elsewhere(self, meeting_id: MeetingId, session_id: SessionId, version: int) -> None:
        """Another process stored `version` of this list: the copy in memory is brought up to date
        when next needed (reading only what changed) and the live pages wake. A commit in flight
        finds the change by its compare-and-set and reapplies, as it always does."""
        slot = self._slots.get((meeting_id, session_id))
        if slot is None or (slot.lst is not None and slot.lst.version >= version):
            return  # not followed here, or already this process's own change
        slot.stale = True
        self._changed(slot, version)

    def resync(self) -> None:
        """Other processes' changes may have gone unnoticed (the listener was away): every list in
        memory is brought up to date when next used, and the live pages look again."""
        for slot in self._slots.values():
            if slot.lst is not None:
                slot.stale = True
                self._changed(slot, slot.lst.version)

    # ---------------------------------------------------------------- changing

    async def request(self, meeting_id: MeetingId, session_id: SessionId, command: RequestFloor,
                      actor: Actor) -> Outcome:
        """Ask for the floor. The receipt time is when the server received the request (the chat
        side stamps it before a command waits its turn), else now; whatever waits after does not count."""
        now = self.clock()
        at = min(command.requested_at, now) if command.requested_at is not None else now
        stamped = RequestFloor(command.participant, command.speech_type, at, next(self._receipts))
        _meeting, session = await self.session(meeting_id, session_id)
        if session.cancelled:
            raise QueueRefused(f"session {session_id!r} is cancelled", "cancelled")
        return await self._submit((meeting_id, session_id), stamped, actor, at, None)

    async def act(self, meeting_id: MeetingId, session_id: SessionId, command: Command, actor: Actor,
                  expected_version: int | None = None) -> Outcome:
        """A moderator action (or a withdrawal). Without `expected_version` the action is decided on
        the list as this process last stored it: two moderators acting at once make one change."""
        at = self.clock()
        key = (meeting_id, session_id)
        slot = self._slots.setdefault(key, _Slot())
        if expected_version is None:
            # Read before any await (`lst` is the list as stored): whatever commits while this call
            # waits must count as a change.
            # A copy another process has changed since does not count: the list as stored does.
            expected_version = slot.lst.version if slot.lst is not None and not slot.stale else None
        await self.session(meeting_id, session_id)
        if expected_version is None:
            expected_version = (await self._fresh(key, slot)).version
        return await self._submit(key, command, actor, at, expected_version)

    async def _submit(self, key: ListKey, command: Command, actor: Actor, at: datetime,
                      expected: int | None) -> Outcome:
        slot = self._slots.setdefault(key, _Slot())
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        slot.pending.append(_Pending(command, actor, at, expected, done))
        if slot.committer is None or slot.committer.done():
            slot.committer = asyncio.create_task(self._commit_loop(key, slot), name=f"floor-commit-{key[1]}")
        return await done

    async def _load(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList:
        return await self.store.load_list(meeting_id, session_id) or SpeakerList(meeting_id, session_id)

    async def _fresh(self, key: ListKey, slot: _Slot) -> SpeakerList:
        """The slot's list as stored: read whole the first time, then by what changed."""
        held = slot.lst
        if held is None:
            slot.stale = False
            loaded = await self._load(*key)
            # Another reader or a commit may have put a later copy meanwhile: the later one stays.
            held = slot.lst if slot.lst is not None and slot.lst.version > loaded.version else loaded
            slot.lst = held
        elif slot.stale:
            slot.stale = False  # a notice arriving while this reads sets it again
            try:
                fresh = await self.store.refresh(held)
            except BaseException:
                slot.stale = True
                raise
            held = slot.lst if slot.lst is not None and slot.lst.version > fresh.version else fresh
            slot.lst = held  # (a commit of this process may have landed meanwhile: the newer one stays)
        return held

    async def _commit_loop(self, key: ListKey, slot: _Slot) -> None:
        while slot.pending:
            batch, slot.pending = slot.pending[:MAX_BATCH], slot.pending[MAX_BATCH:]
            try:
                await self._commit(key, slot, batch)
            except Exception as exc:  # storage down: every caller of the batch hears it; nothing half-applied
                slot.lst = None
                log.exception("storing a change of the list of speakers failed", extra={"session": key[1]})
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)

    async def _commit(self, key: ListKey, slot: _Slot, batch: list[_Pending]) -> None:
        async with self.store.exclusive(*key) as stored:
            if stored is not None and slot.lst is not None and slot.lst.version != stored:
                slot.stale = True  # another process changed it: read its change once, under the lock
            await self._commit_batch(key, slot, batch)

    async def _commit_batch(self, key: ListKey, slot: _Slot, batch: list[_Pending]) -> None:
        for attempt in range(COMMIT_ATTEMPTS):
            if attempt:
                # Another process stored first: read its change and try again, after a short random
                # pause so that two busy processes do not keep colliding.
                await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * 2 ** attempt)))  # noqa: S311 (not crypto)
            lst = (await self._fresh(key, slot)).snapshot()  # the stored list stays as it is until this batch is stored
            base = lst.version
            results: list[tuple[_Pending, Outcome | BaseException]] = []
            for p in batch:
                try:
                    results.append((p, lst.apply(p.command, p.actor, p.at, p.expected)))
                except (QueueRefused, ConcurrentChange) as exc:
                    results.append((p, exc))
            outcomes = [r for _, r in results if isinstance(r, Outcome)]
            if outcomes:
                notices = [n for o in outcomes for n in o.notices if n.kind != "queued"]
                messages = await self._messages(key, lst, notices)
                changed = sorted({s.id for o in outcomes for s in o.changed})
                try:
                    await self.store.save_changes(lst, base, [o.audit for o in outcomes], changed, messages)
                except ConcurrentChange:
                    log.info("list of speakers changed by another process; reapplying",
                             extra={"session": key[1]})
                    slot.stale = True
                    continue
                slot.lst = lst
                if messages:
                    self._on_enqueued()
                self._changed(slot, lst.version)
            for p, result in results:
                if isinstance(result, Outcome):
                    self.actions[type(p.command).__name__] += 1
                if p.done.done():
                    continue
                if isinstance(result, Outcome):
                    p.done.set_result(result)
                else:
                    p.done.set_exception(result)
            return
        raise ConcurrentChange("the list of speakers kept changing under us; try again")

    async def _messages(self, key: ListKey, lst: SpeakerList, notices: Sequence[FloorNotice]) -> list[OutgoingMessage]:
        wanted = [n for n in notices if n.speaker.participant.notify]
        if not wanted or self._write_notices is None:
            return []
        meeting, session = await self.session(*key)
        return await self._write_notices(meeting, session, lst, wanted)

    @staticmethod
    def _changed(slot: _Slot, version: int) -> None:
        for queue in slot.watchers:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(version)

    # ---------------------------------------------------------------- the timer

    async def tick(self) -> int:
        """Send the 30-second warnings and "time is up" notices that are due; returns how many."""
        now = self.clock()
        sent = 0
        for key, slot in list(self._slots.items()):
            if slot.lst is None or slot.stale or slot.lst.current is None:
                continue
            if slot.committer is not None and not slot.committer.done():
                continue  # a change is being stored: look again at the next tick
            notices = slot.lst.timer_notices(now, slot.timer_sent)
            if not notices:
                continue
            messages = await self._messages(key, slot.lst, notices)
            if messages:
                await self.store.save_changes(slot.lst, slot.lst.version, [], [], messages)
                self._on_enqueued()
            self._changed(slot, slot.lst.version)
            sent += len(notices)
        return sent

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the speaking timer check failed")
            await asyncio.sleep(self._tick_seconds)
