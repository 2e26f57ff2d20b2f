"""The outbox on SQLite or PostgreSQL: rows are written in the transaction of the change that
caused them (save_version, subscribe, reminders), claimed and settled by the delivery engine."""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.ids import MeetingId
from floorbridge.core.outbox import ChatThread, OutboxItem, OutboxKind, OutboxStatus, OutgoingMessage
from floorbridge.core.richtext import from_json, to_json

from .engine import reading, run_write, writing
from .group_commit import GroupCommit
from .live import OUTBOX, notify_in, outbox_payload
from .statements import upsert, utc_now
from .tables import chat_threads, outbox, pinned_messages, subscriptions


def _row(message: OutgoingMessage, now: datetime) -> dict[str, Any]:
    return {
        "platform": message.chat.platform.value,
        "chat_id": message.chat.chat_id,
        "kind": message.kind.value,
        "meeting_id": message.meeting_id,
        "payload": to_json(message.message),
        "dedup_key": message.dedup_key,
        "cause": message.cause,
        "thread_key": message.thread_key,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
        "last_error": "",
    }


@functools.cache
def _insert_statement(dialect_name: str) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement: Insert = dialect.insert(outbox).on_conflict_do_nothing(index_elements=["dedup_key"])
    return statement.returning(outbox.c.id)


def _mark_sent(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.id == bindparam("item_id"))
        .values(status=OutboxStatus.SENT.value, sent_at=now, platform_message_id=bindparam("message_id")),
        rows,
    )


def insert_outbox_rows(conn: Connection, messages: Sequence[OutgoingMessage], now: datetime) -> int:
    """Add `messages` inside the caller's transaction; a dedup_key already present is skipped.
    Returns how many rows were added."""
    if not messages:
        return 0
    # One statement with the rows as parameters: SQLAlchemy compiles it once and sends the rows in
    # multi-row batches within the bound-parameter limit ("insertmanyvalues"). The rows inlined
    # with .values(rows) made a statement that could not be cached, compiled anew for every message.
    # RETURNING counts the rows added: the drivers give no row count for a batch.
    added = len(conn.execute(_insert_statement(conn.dialect.name), [_row(m, now) for m in messages]).all())
    if added:
        notify_in(conn, OUTBOX, outbox_payload(m.chat.platform.value for m in messages))
    return added


async def insert_outbox(conn: AsyncConnection, messages: Sequence[OutgoingMessage], now: datetime) -> int:
    """insert_outbox_rows through an async connection."""
    if not messages:
        return 0
    return await conn.run_sync(insert_outbox_rows, messages, now)


class SqlOutbox:
    """The delivery engine's view of the outbox.

    On PostgreSQL, where several processes share the table, `due` claims the rows it hands out
    (`SELECT … FOR UPDATE SKIP LOCKED`, then `claimed_by`): two processes never take the same row,
    and neither waits for the other's. The platform's owner (an advisory lock, see ownership.py)
    is the only process that claims a platform's rows; when it takes a platform over it takes back
    what a gone owner had claimed and not settled (`take_over`): that owner may have sent some of
    it, which is what the idempotency keys are for. On SQLite there is one process: reading is
    claiming, and the write a claim costs is saved."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._sent: GroupCommit[tuple[int, str], None] = GroupCommit(self._mark_sent_batch)
        # Delivery's own statements (claims, "sent") are each a transaction by itself: on PostgreSQL
        # they go through a small pool of autocommit connections, whose pre-ping is one round trip
        # (";") instead of three (BEGIN, ";", ROLLBACK) and which need no BEGIN and COMMIT. That is
        # on the path of every send: Telegram's next waits for the last one's "sent" (in_flight).
        self._auto: AsyncEngine | None = (
            create_async_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True, pool_size=2,
                                hide_parameters=True) if engine.dialect.name == "postgresql" else None)
        # Who claims, as stored in claimed_by: this process (a restarted one is another claimer).
        self.claimer = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"

    async def due(self, platform: Platform, limit: int, *, exclude: Sequence[int] = ()) -> list[OutboxItem]:
        """Pending rows of `platform` whose time has come, oldest first, without those in `exclude`
        (already in flight in this process); on PostgreSQL claimed for this process."""
        query = (
            select(outbox)
            .where(
                outbox.c.status == OutboxStatus.PENDING.value,
                outbox.c.platform == platform.value,
                outbox.c.not_before <= self._clock(),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if exclude:
            query = query.where(outbox.c.id.not_in(list(exclude)))
        if self._auto is None:
            async with reading(self._engine) as conn:
                rows = (await conn.execute(query)).all()
            return [_item(r) for r in rows]
        # Rows this process claimed and dropped from memory (a chat held back behind a retry) are
        # its own to take again.
        mine = or_(outbox.c.claimed_by.is_(None), outbox.c.claimed_by == self.claimer)
        free = query.with_only_columns(outbox.c.id).where(mine).with_for_update(skip_locked=True)
        claim = (update(outbox).where(outbox.c.id.in_(free.scalar_subquery()))
                 .values(claimed_by=self.claimer).returning(*outbox.c))
        async with self._auto.connect() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_item(r) for r in rows), key=lambda item: item.id)

    async def close(self) -> None:
        if self._auto is not None:
            await self._auto.dispose()

    async def take_over(self, platform: Platform) -> int:
        """This process now owns `platform`: rows other processes claimed and did not settle are
        free again (their claimer is gone, or about to stop). Returns how many."""
        if self._auto is None:
            return 0
        async with writing(self._engine) as conn:
            freed = await conn.execute(
                update(outbox)
                .where(outbox.c.platform == platform.value, outbox.c.status == OutboxStatus.PENDING.value,
                       outbox.c.claimed_by.is_not(None), outbox.c.claimed_by != self.claimer)
                .values(claimed_by=None)
            )
        return max(freed.rowcount or 0, 0)

    async def depth(self) -> dict[str, tuple[int, float]]:
        """Per platform: pending rows, and the age in seconds of the oldest (for /metrics)."""
        query = (select(outbox.c.platform, func.count(), func.min(outbox.c.created_at))
                 .where(outbox.c.status == OutboxStatus.PENDING.value).group_by(outbox.c.platform))
        now = self._clock()
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        out: dict[str, tuple[int, float]] = {}
        for platform, count, oldest in rows:
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            out[platform] = (int(count), (now - oldest).total_seconds() if oldest is not None else 0.0)
        return out

    async def ping(self) -> None:
        """One round trip to the database (for /readyz); raises when it cannot be reached."""
        async with reading(self._engine) as conn:
            await conn.execute(select(1))

    async def mark_sent(self, item_id: int, platform_message_id: str) -> None:
        """Settled once the row is stored as sent; sends that finish together share a transaction."""
        await self._sent.submit((item_id, platform_message_id))

    async def _mark_sent_batch(self, sent: Sequence[tuple[int, str]]) -> list[None]:
        rows = [{"item_id": item_id, "message_id": message_id} for item_id, message_id in sent]
        if self._auto is not None:
            async with self._auto.connect() as conn:
                await conn.run_sync(_mark_sent, rows, self._clock())
        else:
            await run_write(self._engine, _mark_sent, rows, self._clock())
        return [None] * len(sent)

    async def retry_at(self, item: OutboxItem, when: datetime, error: str) -> None:
        """Try `item` again at `when`; later pending rows of its chat wait too, so the chat's order holds."""
        chat = item.outgoing.chat
        async with writing(self._engine) as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item.id)
                .values(not_before=when, attempts=outbox.c.attempts + 1, last_error=error[:2000])
            )
            await conn.execute(
                update(outbox)
                .where(
                    outbox.c.platform == chat.platform.value,
                    outbox.c.chat_id == chat.chat_id,
                    outbox.c.status == OutboxStatus.PENDING.value,
                    outbox.c.id > item.id,
                    outbox.c.not_before < when,
                )
                .values(not_before=when)
            )

    async def reject(self, item: OutboxItem, reason: str) -> None:
        """This row failed for good; the chat and its subscription stay as they are."""
        async with writing(self._engine) as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item.id)
                .values(status=OutboxStatus.FAILED.value, attempts=outbox.c.attempts + 1, last_error=reason[:2000])
            )

    async def fail(self, item: OutboxItem, reason: str, notices: Sequence[OutgoingMessage]) -> None:
        """Settle a permanent failure: the row, every pending row and active subscription of that
        chat, and the notices to moderators, in one transaction."""
        chat = item.outgoing.chat
        now = self._clock()
        same_chat = and_(outbox.c.platform == chat.platform.value, outbox.c.chat_id == chat.chat_id)
        async with writing(self._engine) as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item.id)
                .values(status=OutboxStatus.FAILED.value, attempts=outbox.c.attempts + 1, last_error=reason[:2000])
            )
            await conn.execute(
                update(outbox)
                .where(same_chat, outbox.c.status == OutboxStatus.PENDING.value)
                .values(status=OutboxStatus.FAILED.value, last_error=f"not sent: {reason}"[:2000])
            )
            await conn.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.platform == chat.platform.value,
                    subscriptions.c.chat_id == chat.chat_id,
                    subscriptions.c.active.is_(True),
                )
                .values(active=False, stopped_reason=reason[:2000])
            )
            await insert_outbox(conn, notices, now)

    async def pinned_message(self, chat: ChatRef, meeting_id: MeetingId) -> str | None:
        query = select(pinned_messages.c.message_id).where(
            pinned_messages.c.platform == chat.platform.value,
            pinned_messages.c.chat_id == chat.chat_id,
            pinned_messages.c.meeting_id == meeting_id,
        )
        async with reading(self._engine) as conn:
            return (await conn.execute(query)).scalar()

    async def set_pinned_message(self, chat: ChatRef, meeting_id: MeetingId, message_id: str) -> None:
        values = {
            "platform": chat.platform.value,
            "chat_id": chat.chat_id,
            "meeting_id": meeting_id,
            "message_id": message_id,
            "updated_at": self._clock(),
        }
        async with writing(self._engine) as conn:
            await upsert(conn, pinned_messages, values, ["platform", "chat_id", "meeting_id"])

    async def chat_thread(self, chat: ChatRef, thread_key: str) -> ChatThread | None:
        """The thread the messages with `thread_key` go to in `chat`; None before its first was sent."""
        query = select(chat_threads.c.root_message_id, chat_threads.c.thread_id).where(
            chat_threads.c.platform == chat.platform.value,
            chat_threads.c.chat_id == chat.chat_id,
            chat_threads.c.thread_key == thread_key,
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return ChatThread(row.root_message_id, row.thread_id) if row is not None else None

    async def save_chat_thread(self, chat: ChatRef, thread_key: str, thread: ChatThread) -> None:
        """Store the thread of `thread_key` in `chat`, or update it (the platform thread opened on
        its root later); created_at stays that of the first save."""
        values = {
            "platform": chat.platform.value,
            "chat_id": chat.chat_id,
            "thread_key": thread_key,
            "root_message_id": thread.root_message_id,
            "thread_id": thread.thread_id,
            "created_at": self._clock(),
        }
        async with writing(self._engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(chat_threads).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["platform", "chat_id", "thread_key"],
                set_={"root_message_id": stmt.excluded.root_message_id, "thread_id": stmt.excluded.thread_id},
            )
            await conn.execute(stmt)

    async def rows(self, chat: ChatRef | None = None) -> list[tuple[OutboxItem, OutboxStatus, str]]:
        """Every row (of one chat) with its status and last error, oldest first."""
        query = select(outbox).order_by(outbox.c.id)
        if chat is not None:
            query = query.where(outbox.c.platform == chat.platform.value, outbox.c.chat_id == chat.chat_id)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [(_item(r), OutboxStatus(r.status), r.last_error) for r in rows]


def _item(row: Any) -> OutboxItem:
    message = OutgoingMessage(
        chat=ChatRef(Platform(row.platform), row.chat_id),
        message=from_json(row.payload),
        kind=OutboxKind(row.kind),
        meeting_id=MeetingId(row.meeting_id) if row.meeting_id else None,
        dedup_key=row.dedup_key,
        cause=row.cause,
        thread_key=row.thread_key,
    )
    return OutboxItem(row.id, message, row.attempts, row.created_at, row.not_before)
