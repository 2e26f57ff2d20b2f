"""SqlChatStore: floorbridge.core.ports.ChatStore on SQLite or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from floorbridge.core.chats import ChatProfile, ChatRef, NoticeKind, Platform, Subscription
from floorbridge.core.ids import MeetingId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.tokens import token_hash

from .engine import reading, run_write, writing
from .group_commit import GroupCommit
from .outbox import insert_outbox_rows
from .statements import upsert, utc_now
from .tables import chats, subscriptions

# Every command reads its chat's profile. This process's own changes are seen at once; another
# process's (a chat's commands are handled by the process that owns its platform) within this time.
PROFILE_SECONDS = 5.0
MAX_PROFILES = 50_000


class SqlChatStore:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._profiles: dict[ChatRef, tuple[float, ChatProfile | None]] = {}
        self._saves = 0  # a read that overlapped a save is not remembered
        self._enqueues = GroupCommit(self._insert_batch)

    async def get_profile(self, chat: ChatRef) -> ChatProfile | None:
        cached = self._profiles.get(chat)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        saves = self._saves
        query = select(chats).where(chats.c.platform == chat.platform.value, chats.c.chat_id == chat.chat_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        profile = _profile(row) if row is not None else None
        if saves == self._saves:
            self._profiles.pop(chat, None)
            self._profiles[chat] = (time.monotonic() + PROFILE_SECONDS, profile)
            if len(self._profiles) > MAX_PROFILES:
                del self._profiles[next(iter(self._profiles))]  # the oldest
        return profile

    async def save_profile(self, profile: ChatProfile) -> None:
        values = {
            "platform": profile.chat.platform.value,
            "chat_id": profile.chat.chat_id,
            "is_group": profile.is_group,
            "language": profile.language,
            "timezone": profile.timezone,
            "meeting_id": profile.meeting_id,
            "feed_token": profile.feed_token or None,
            "feed_token_hash": token_hash(profile.feed_token) if profile.feed_token else None,
            "started": profile.started,
            "updated_at": self._clock(),
        }
        self._saves += 1
        self._profiles.pop(profile.chat, None)
        try:
            async with writing(self._engine) as conn:
                await upsert(conn, chats, values, ["platform", "chat_id"])
        finally:
            self._saves += 1
            self._profiles.pop(profile.chat, None)  # read again: the stored row decides

    async def profile_by_feed_token(self, token: str) -> ChatProfile | None:
        if not token:
            return None
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(chats).where(chats.c.feed_token_hash == token_hash(token)))).first()
        return _profile(row) if row is not None else None

    async def subscriptions_of(self, chat: ChatRef) -> list[Subscription]:
        query = (
            select(subscriptions)
            .where(subscriptions.c.platform == chat.platform.value, subscriptions.c.chat_id == chat.chat_id)
            .order_by(subscriptions.c.meeting_id)
        )
        async with reading(self._engine) as conn:
            return [_subscription(r) for r in (await conn.execute(query)).all()]

    async def save_subscription(self, subscription: Subscription) -> None:
        values = {
            "platform": subscription.chat.platform.value,
            "chat_id": subscription.chat.chat_id,
            "meeting_id": subscription.meeting_id,
            "tracks": sorted(subscription.tracks),
            "kinds": sorted(k.value for k in subscription.kinds),
            "active": subscription.active,
            "stopped_reason": subscription.stopped_reason,
            "created_at": subscription.created_at or self._clock(),
        }
        async with writing(self._engine) as conn:
            await upsert(conn, subscriptions, values, ["platform", "chat_id", "meeting_id"])

    async def delete_subscription(self, chat: ChatRef, meeting_id: MeetingId) -> bool:
        async with writing(self._engine) as conn:
            result = await conn.execute(
                delete(subscriptions).where(
                    subscriptions.c.platform == chat.platform.value,
                    subscriptions.c.chat_id == chat.chat_id,
                    subscriptions.c.meeting_id == meeting_id,
                )
            )
        return bool(result.rowcount)

    async def subscribers(self, meeting_id: MeetingId) -> list[tuple[Subscription, ChatProfile]]:
        query = (
            select(subscriptions, chats)
            .join(
                chats,
                (chats.c.platform == subscriptions.c.platform) & (chats.c.chat_id == subscriptions.c.chat_id),
            )
            .where(subscriptions.c.meeting_id == meeting_id, subscriptions.c.active.is_(True))
            .order_by(subscriptions.c.platform, subscriptions.c.chat_id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [(_subscription(r), _profile(r)) for r in rows]

    async def enqueue(self, messages: Sequence[OutgoingMessage]) -> int:
        """Store messages for delivery; returns how many were new. Burst callers (a reply to each
        of a thousand commands) share transactions."""
        return await self._enqueues.submit(messages)

    async def _insert_batch(self, batches: Sequence[Sequence[OutgoingMessage]]) -> list[int]:
        return await run_write(self._engine, _insert_each, batches, self._clock())


def _insert_each(conn: Connection, batches: Sequence[Sequence[OutgoingMessage]], now: datetime) -> list[int]:
    return [insert_outbox_rows(conn, messages, now) for messages in batches]


def _profile(row: Any) -> ChatProfile:
    return ChatProfile(
        chat=ChatRef(Platform(row.platform), row.chat_id),
        is_group=bool(row.is_group),
        language=row.language,
        timezone=row.timezone,
        meeting_id=MeetingId(row.meeting_id) if row.meeting_id else None,
        feed_token=row.feed_token or "",
        started=bool(row.started),
    )


def _subscription(row: Any) -> Subscription:
    return Subscription(
        chat=ChatRef(Platform(row.platform), row.chat_id),
        meeting_id=MeetingId(row.meeting_id),
        tracks=frozenset(row.tracks),
        kinds=frozenset(NoticeKind(k) for k in row.kinds),
        active=bool(row.active),
        stopped_reason=row.stopped_reason,
        created_at=row.created_at,
    )
