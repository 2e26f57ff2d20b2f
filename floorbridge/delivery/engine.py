"""The delivery engine: one worker per platform drains that platform's outbox rows.

Each worker keeps the messages of one chat in order (one send in flight per chat), spaces sends
with its platform's limiter, honours a 429 exactly, retries temporary failures with exponential
back-off and full jitter, and settles permanent failures at once (no retry loop). Workers share
nothing, so one platform being down never delays another. State lives in the outbox table: a
restarted process resumes where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from floorbridge.core import log_context
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.ids import MeetingId
from floorbridge.core.outbox import ChatThread, OutboxItem, OutboxKind, OutgoingMessage
from floorbridge.core.tasks import cancel_and_wait

from .errors import MessageRejected, PermanentFailure, RateLimited, TemporaryFailure
from .limits import Limiter

log = logging.getLogger("floorbridge.delivery")
# Shortest time between two outbox reads of one worker: a burst of writes (each notifies) or of
# finished sends costs one read per gap, not one each; and the longest a new message waits to be seen.
FETCH_GAP = 0.02


class Sender(Protocol):
    """A platform adapter's side of delivery."""

    platform: Platform

    async def send(self, item: OutboxItem) -> str:
        """Send the message; return the platform's message id. Raises RateLimited, TemporaryFailure
        or PermanentFailure."""
        ...

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        """Show the message as the chat's pinned one: edit `existing` in place where the platform
        allows, else send and pin a new one. Returns the id of the pinned message."""
        ...

    async def send_in_thread(self, item: OutboxItem, thread: ChatThread | None) -> tuple[str, ChatThread]:
        """Send a message that has a thread_key: into `thread`, or, when None, as the message that
        starts it. Returns the platform's message id and the thread as it stands now (the one given
        when nothing changed; the engine stores it otherwise). Raises as `send` does."""
        ...


class OutboxPort(Protocol):
    async def due(self, platform: Platform, limit: int, *, exclude: Sequence[int] = ()) -> list[OutboxItem]:
        """Pending rows whose time has come, oldest first, taken for this process (claimed where
        several processes share the outbox)."""
        ...

    async def take_over(self, platform: Platform) -> int:
        """This process now delivers `platform`: what another process took and left unsettled is free again."""
        ...

    async def mark_sent(self, item_id: int, platform_message_id: str) -> None: ...

    async def retry_at(self, item: OutboxItem, when: datetime, error: str) -> None: ...

    async def fail(self, item: OutboxItem, reason: str, notices: Sequence[OutgoingMessage]) -> None: ...

    async def reject(self, item: OutboxItem, reason: str) -> None: ...

    async def pinned_message(self, chat: ChatRef, meeting_id: MeetingId) -> str | None: ...

    async def set_pinned_message(self, chat: ChatRef, meeting_id: MeetingId, message_id: str) -> None: ...

    async def chat_thread(self, chat: ChatRef, thread_key: str) -> ChatThread | None: ...

    async def save_chat_thread(self, chat: ChatRef, thread_key: str, thread: ChatThread) -> None: ...


FailureNotices = Callable[[OutboxItem, str], Sequence[OutgoingMessage]]


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempts: int) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempts)]."""
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempts, 30)))  # noqa: S311 (not crypto)


@dataclass
class WorkerStats:
    sent: int = 0
    rate_limited: int = 0
    retried: int = 0
    failed: int = 0
    # Seconds from enqueue to delivery, of the latest sends (bounded: a process runs for months).
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))

    def figures(self) -> WorkerFigures:
        values = list(self.latencies)
        return WorkerFigures(self.sent, self.rate_limited, self.retried, self.failed, len(values), sum(values),
                             statistics.median(values) if values else 0.0)


@dataclass(frozen=True)
class WorkerFigures:
    """What /metrics shows of one platform's delivery (a summary of WorkerStats, small enough to
    hand from the chat worker to the web process at each scrape)."""

    sent: int = 0
    rate_limited: int = 0
    retried: int = 0
    failed: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_p50: float = 0.0


@dataclass(frozen=True)
class DeliveryReport:
    """Per enabled platform: whether this process runs its bot and delivery now, and its figures."""

    running: Mapping[str, bool] = field(default_factory=dict)
    workers: Mapping[str, WorkerFigures] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"running": dict(self.running), "workers": {k: asdict(v) for k, v in self.workers.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliveryReport:
        return cls({str(k): bool(v) for k, v in data["running"].items()},
                   {str(k): WorkerFigures(**v) for k, v in data["workers"].items()})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PlatformWorker:
    def __init__(
        self,
        sender: Sender,
        outbox: OutboxPort,
        limiter: Limiter,
        *,
        failure_notices: FailureNotices = lambda item, reason: (),
        concurrency: int = 32,
        batch: int = 500,
        poll_seconds: float = 1.0,
        backoff: Backoff = Backoff(),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.sender = sender
        # Awaited before each round of sends: the process may ask delivery to give way a moment
        # (web acknowledgements first).
        self.platform = sender.platform
        self._outbox = outbox
        self._limiter = limiter
        self._failure_notices = failure_notices
        self._concurrency = concurrency
        self._batch = batch
        self._poll = poll_seconds
        self._backoff = backoff
        self._clock = clock
        self._wake = asyncio.Event()
        self._queues: OrderedDict[ChatRef, deque[OutboxItem]] = OrderedDict()
        self._known: set[int] = set()  # ids queued or in flight here
        self._busy: set[ChatRef] = set()  # chats with a send in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_fetch = 0.0
        self._look_again = True  # rows were written, or the last fetch was full: fetch soon, not at the next poll
        # Sent, but storing that failed (the database away): recorded before anything else is sent,
        # so that a message is not sent again because its "sent" was lost.
        self._unrecorded: dict[int, str] = {}
        self.stats = WorkerStats()

    # ---------------------------------------------------------------- lifetime

    def start(self) -> None:
        """Start (or start again after `stop`). What an earlier run had fetched and not sent is
        forgotten and read again from the outbox: another process may have sent it meanwhile."""
        self._queues.clear()
        self._known = set(self._unrecorded)  # sent: recorded first, never fetched again
        self._busy.clear()
        self._look_again = True
        self._last_fetch = 0.0
        self._stopping = False
        self._main = asyncio.create_task(self._run(), name=f"delivery-{self.platform}")

    async def stop(self) -> None:
        """Stop taking work and wait for sends in flight (their results are recorded)."""
        if self._main is not None:
            # The flag, not only the cancellation, ends the loop: Python 3.11's wait primitives
            # can swallow a cancel that races with a wake-up (gh-86296).
            self._stopping = True
            self._wake.set()
            await cancel_and_wait(self._main)
            self._main = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._unrecorded:
            await self._record_unrecorded()  # one last try; the rest is tried again at the next start

    def notify(self) -> None:
        """New rows were written: look at the outbox soon (within FETCH_GAP) rather than at the next poll."""
        self._look_again = True
        self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._known

    # ---------------------------------------------------------------- scheduling

    async def _run(self) -> None:
        while not self._stopping:
            try:
                freed = await self._outbox.take_over(self.platform)
                if freed:
                    log.warning("taking back messages another process had taken and not settled",
                                extra={"platform": self.platform, "messages": freed})
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot take the platform's outbox over; retrying", extra={"platform": self.platform})
                await asyncio.sleep(self._poll)
        while not self._stopping:
            try:
                if self._unrecorded and not await self._record_unrecorded():
                    wait = self._poll  # the database is still away: send nothing more until it is back
                else:
                    await self._fetch_if_due()
                    wait = self._dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker error; retrying", extra={"platform": self.platform})
                wait = self._poll
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.001)):
                    await self._wake.wait()

    async def _record_unrecorded(self) -> bool:
        """Store the sends whose "sent" could not be stored; True once all are."""
        for item_id, message_id in list(self._unrecorded.items()):
            try:
                await self._outbox.mark_sent(item_id, message_id)
            except Exception as exc:
                log.warning("cannot store sent messages yet (%s); sending waits", type(exc).__name__,
                            extra={"platform": self.platform, "messages": len(self._unrecorded)})
                return False
            del self._unrecorded[item_id]
            self._known.discard(item_id)
        return True

    async def _fetch_if_due(self) -> None:
        now = time.monotonic()
        room = self._batch - len(self._known)
        since = now - self._last_fetch
        if room <= 0 or since < (FETCH_GAP if self._look_again else self._poll):
            return
        self._last_fetch = now
        self._look_again = False
        items = await self._outbox.due(self.platform, room, exclude=sorted(self._known))
        for item in items:
            if item.id in self._known:
                continue
            self._known.add(item.id)
            self._queues.setdefault(item.outgoing.chat, deque()).append(item)
        if len(items) == room:
            self._look_again = True  # more are waiting: fetch again once there is room

    def _dispatch(self) -> float:
        """Start every send the limiter allows now; return how long until the next might be."""
        if self._unrecorded:
            return 0.0  # the loop records them first
        now = time.monotonic()
        gap = FETCH_GAP if self._look_again else self._poll
        soonest = max(gap - (now - self._last_fetch), 0.0)
        for chat in list(self._queues):
            if chat in self._busy:
                continue
            if len(self._busy) >= self._concurrency:
                # The limiter's clock must be the send's: only start what can go out right now.
                return min(soonest, 0.05)
            wait = self._limiter.delay(chat, now)
            if wait > 0:
                soonest = min(soonest, wait)
                continue
            queue = self._queues[chat]
            item = queue.popleft()
            if not queue:
                del self._queues[chat]
            token = self._limiter.take(chat, now)
            self._busy.add(chat)
            task = asyncio.create_task(self._deliver(item, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return soonest

    # ---------------------------------------------------------------- one message

    async def _deliver(self, item: OutboxItem, token: object) -> None:
        chat = item.outgoing.chat
        requeue = False
        log_context.delivery_id.set(item.idempotency_key)  # this task's own context: its log lines say it
        try:
            requeue = await self._attempt(item, token)
        except asyncio.CancelledError:
            requeue = False
            raise
        except Exception:
            log.exception("delivery bookkeeping failed", extra={"outbox_id": item.id})
        finally:
            self._busy.discard(chat)
            if not requeue and item.id not in self._unrecorded:
                self._known.discard(item.id)
            self._wake.set()

    async def _attempt(self, item: OutboxItem, token: object) -> bool:
        """Send once and record the outcome. True when the item goes back to the front of its chat's queue."""
        chat = item.outgoing.chat
        extra = {"platform": self.platform, "chat": chat.chat_id, "outbox_id": item.id}
        try:
            try:
                message_id = await self._send(item)
            finally:
                self._limiter.settle(chat, token, time.monotonic())
        except RateLimited as exc:
            self.stats.rate_limited += 1
            until = time.monotonic() + exc.retry_after
            self._limiter.pause(None if exc.whole_platform else chat, until)
            await self._outbox.retry_at(item, self._clock() + timedelta(seconds=exc.retry_after), str(exc))
            log.warning("rate limited", extra={**extra, "retry_after": exc.retry_after})
            self._queues.setdefault(chat, deque()).appendleft(item)
            self._queues.move_to_end(chat, last=False)
            return True
        except TemporaryFailure as exc:
            self.stats.retried += 1
            delay = self._backoff.delay(item.attempts)
            await self._outbox.retry_at(item, self._clock() + timedelta(seconds=delay), str(exc))
            log.warning("send failed, will retry", extra={**extra, "error": str(exc), "retry_in": round(delay, 3)})
            # Later messages to this chat wait behind it: they are dropped here and fetched again in order.
            self._forget_chat(chat)
            return False
        except MessageRejected as exc:
            self.stats.failed += 1
            await self._outbox.reject(item, str(exc))
            log.error("message rejected by the platform", extra={**extra, "error": str(exc)})
            return False
        except PermanentFailure as exc:
            self.stats.failed += 1
            await self._outbox.fail(item, str(exc), self._failure_notices(item, str(exc)))
            log.warning("chat unreachable; subscription stopped", extra={**extra, "error": str(exc)})
            self._forget_chat(chat)
            return False
        self._limiter.succeeded()
        if item.outgoing.kind is OutboxKind.PIN_TODAY:
            # Sending and pinning a new message is two requests to the chat: count the second,
            # from when it ended, so the chat's next message keeps its distance from it.
            now = time.monotonic()
            self._limiter.settle(chat, self._limiter.take(chat, now), now)
        try:
            await self._outbox.mark_sent(item.id, message_id)
        except Exception:
            self._unrecorded[item.id] = message_id  # stays known here: not fetched and sent again
            log.exception("a sent message could not be stored as sent; sending waits for the database",
                          extra=extra)
        self.stats.sent += 1
        self.stats.latencies.append((self._clock() - item.created_at).total_seconds())
        return False

    async def _send(self, item: OutboxItem) -> str:
        outgoing = item.outgoing
        if outgoing.kind is OutboxKind.PIN_TODAY and outgoing.meeting_id is not None:
            existing = await self._outbox.pinned_message(outgoing.chat, outgoing.meeting_id)
            message_id = await self.sender.put_pinned(item, existing)
            if message_id != existing:
                await self._outbox.set_pinned_message(outgoing.chat, outgoing.meeting_id, message_id)
            return message_id
        if outgoing.thread_key is not None:
            # One send per chat is in flight, so the thread the first message started is stored
            # before the chat's next message looks it up.
            thread = await self._outbox.chat_thread(outgoing.chat, outgoing.thread_key)
            message_id, now = await self.sender.send_in_thread(item, thread)
            if now != thread:
                await self._outbox.save_chat_thread(outgoing.chat, outgoing.thread_key, now)
            return message_id
        return await self.sender.send(item)

    def _forget_chat(self, chat: ChatRef) -> None:
        for queued in self._queues.pop(chat, deque()):
            self._known.discard(queued.id)


class DeliveryEngine:
    """The workers of every enabled platform."""

    def __init__(self, workers: Sequence[PlatformWorker]) -> None:
        self.workers = {w.platform: w for w in workers}
        # Told of every notify too: a web process hands the news to its chat worker this way.
        self.listeners: list[Callable[[Sequence[Platform] | None], None]] = []

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers.values()))

    def notify(self, platforms: Sequence[Platform] | None = None) -> None:
        for platform, worker in self.workers.items():
            if platforms is None or platform in platforms:
                worker.notify()
        for listener in self.listeners:
            listener(platforms)
