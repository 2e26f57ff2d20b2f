"""What every chat adapter does with an incoming command: ask the conversation, queue the replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from floorbridge.bots.conversation import Conversation
from floorbridge.bots.events import Incoming, Reply
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import ChatStore

# Commands handled at once, over all platforms: a burst of thousands waits its turn here rather than
# holding thousands of database connections and half-built replies. (The receipt time that orders
# a request to speak is stamped before the wait.)
CHAT_CONCURRENCY = 16


class ReplyQueue:
    """Replies go through the outbox like everything else the bots send, so they share the
    platform's limiter (no 429 from a burst of commands) and survive a restart; `wake` tells the
    platform's delivery worker to look now rather than at its next poll."""

    def __init__(self, conversation: Conversation, chats: ChatStore, wake: Callable[[], None],
                 turns: asyncio.Semaphore | None = None) -> None:
        self.conversation = conversation
        self._chats = chats
        self._wake = wake
        self._turns = turns or asyncio.Semaphore(CHAT_CONCURRENCY)

    def _received(self, incoming: Incoming) -> Incoming:
        if incoming.received_at is not None:
            return incoming
        return replace(incoming, received_at=self.conversation.clock())

    async def answer(self, incoming: Incoming) -> Sequence[Reply]:
        incoming = self._received(incoming)
        async with self._turns:
            return await self.conversation.handle(incoming)

    async def handle(self, incoming: Incoming) -> int:
        incoming = self._received(incoming)
        async with self._turns:
            replies = await self.conversation.handle(incoming)
        await self.queue(incoming, replies)
        return len(replies)

    async def queue(self, incoming: Incoming, replies: Sequence[Reply]) -> None:
        if not replies:
            return
        await self._chats.enqueue([OutgoingMessage(incoming.chat, r.message, cause="reply") for r in replies])
        self._wake()
