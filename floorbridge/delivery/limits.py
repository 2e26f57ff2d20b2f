"""Client-side rate limits that keep each platform under its documented limits, so 429s are rare.

The numbers are the platforms' own: Telegram about 30 messages per second overall, one per
second in a chat and 20 per minute in a group; Discord 50 requests per second per bot (its
per-route buckets are read from response headers by discord.py); Matrix whatever the
homeserver allows, learnt from M_LIMIT_EXCEEDED answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from floorbridge.core.chats import ChatRef

# Spacing beyond the limit itself, for clock granularity between us and the server.
MARGIN = 0.005


class SlidingWindow:
    """At most `limit` events in any window of `period` seconds, as the server counts them.

    The server counts a request when it arrives, which is some time after we decide to send it
    and before its answer comes back. So an event is counted from the moment it is taken, as
    "now" while it is in flight, and from its answer once settled: never earlier than the server
    saw it. (Counting from the decision alone lets slow and fast requests bunch up at the server
    and draw 429s.)"""

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._events: dict[int, float | None] = {}  # token -> settled time (None: in flight)
        self._next = 0
        self._settled = 0
        # A delivery worker asks for every waiting chat at the same `now`: answered once.
        self._memo: tuple[float, int, float] = (-1.0, -1, 0.0)

    def _expire(self, now: float) -> None:
        old = [k for k, t in self._events.items() if t is not None and now - t >= self.period + MARGIN]
        for k in old:
            del self._events[k]

    def delay(self, now: float) -> float:
        if self._memo[0] == now and self._memo[1] == self._changes:
            return self._memo[2]
        self._expire(now)
        if len(self._events) < self.limit:
            wait = 0.0
        else:
            times = sorted(now if t is None else t for t in self._events.values())
            wait = max(times[len(times) - self.limit] + self.period + MARGIN - now, 0.0)
        self._memo = (now, self._changes, wait)
        return wait

    @property
    def _changes(self) -> int:
        return self._next + self._settled

    def take(self, now: float) -> int:
        self._next += 1
        self._events[self._next] = None
        return self._next

    def settle(self, token: int, now: float) -> None:
        if token in self._events:
            self._events[token] = now
            self._settled += 1


class Limiter(Protocol):
    def delay(self, chat: ChatRef, now: float) -> float:
        """Seconds to wait before a send to `chat` is allowed (0 = now)."""
        ...

    def take(self, chat: ChatRef, now: float) -> Any:
        """Record a send to `chat` starting at `now`; returns a token for `settle`."""
        ...

    def settle(self, chat: ChatRef, token: Any, now: float) -> None:
        """The send `token` was answered at `now`."""
        ...

    def pause(self, chat: ChatRef | None, until: float) -> None:
        """Nothing to `chat` (None: to anyone) before `until`: a 429 being honoured."""
        ...

    def succeeded(self) -> None: ...


@dataclass
class _Pauses:
    everything_until: float = 0.0
    chats: dict[ChatRef, float] = field(default_factory=dict)

    def delay(self, chat: ChatRef, now: float) -> float:
        return max(self.everything_until - now, self.chats.get(chat, 0.0) - now, 0.0)

    def pause(self, chat: ChatRef | None, until: float) -> None:
        if chat is None:
            self.everything_until = max(self.everything_until, until)
        else:
            self.chats[chat] = max(self.chats.get(chat, 0.0), until)


class TelegramLimiter:
    def __init__(self, per_second: int = 30, per_chat_interval: float = 1.0, group_per_minute: int = 20) -> None:
        self._global = SlidingWindow(per_second, 1.0)
        self._interval = per_chat_interval + MARGIN
        self._group_limit = group_per_minute
        self._last: dict[ChatRef, float] = {}
        self._groups: dict[ChatRef, SlidingWindow] = {}
        self._pauses = _Pauses()

    @staticmethod
    def is_group(chat: ChatRef) -> bool:
        return chat.chat_id.startswith("-")

    def delay(self, chat: ChatRef, now: float) -> float:
        wait = max(self._global.delay(now), self._pauses.delay(chat, now))
        last = self._last.get(chat)
        if last is not None:
            wait = max(wait, last + self._interval - now)
        if self.is_group(chat) and chat in self._groups:
            wait = max(wait, self._groups[chat].delay(now))
        return wait

    def take(self, chat: ChatRef, now: float) -> Any:
        self._last[chat] = now
        group = None
        if self.is_group(chat):
            group = self._groups.setdefault(chat, SlidingWindow(self._group_limit, 60.0)).take(now)
        return self._global.take(now), group

    def settle(self, chat: ChatRef, token: Any, now: float) -> None:
        overall, group = token
        self._global.settle(overall, now)
        self._last[chat] = max(self._last.get(chat, now), now)
        if group is not None:
            self._groups[chat].settle(group, now)

    def pause(self, chat: ChatRef | None, until: float) -> None:
        self._pauses.pause(chat, until)

    def succeeded(self) -> None:
        pass


class DiscordLimiter:
    """The global 50 requests per second; discord.py itself waits on the per-route buckets."""

    def __init__(self, per_second: int = 50) -> None:
        self._global = SlidingWindow(per_second, 1.0)
        self._pauses = _Pauses()

    def delay(self, chat: ChatRef, now: float) -> float:
        return max(self._global.delay(now), self._pauses.delay(chat, now))

    def take(self, chat: ChatRef, now: float) -> Any:
        return self._global.take(now)

    def settle(self, chat: ChatRef, token: Any, now: float) -> None:
        self._global.settle(token, now)

    def pause(self, chat: ChatRef | None, until: float) -> None:
        self._pauses.pause(chat, until)

    def succeeded(self) -> None:
        pass


class AdaptiveLimiter:
    """A rate learnt from the server (Matrix): starts at `per_second`; every M_LIMIT_EXCEEDED
    halves it (down to `floor`) after the wait the server asked for, and each run of successes
    wins part of it back, never above the configured rate."""

    def __init__(self, per_second: float = 10.0, *, floor: float = 0.2) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        self.ceiling = per_second
        self.rate = per_second
        self.floor = min(floor, per_second)
        self._next_at = 0.0
        self._pauses = _Pauses()
        self._successes = 0

    def delay(self, chat: ChatRef, now: float) -> float:
        return max(self._next_at - now, self._pauses.delay(chat, now), 0.0)

    def take(self, chat: ChatRef, now: float) -> Any:
        interval = 1.0 / self.rate * (1 + MARGIN)
        # A bucket of two: a send that starts late (the loop was busy) does not push every later
        # one back, which would sink the rate below the server's; a homeserver's own bucket is
        # larger (Synapse's burst_count), and any 429 still halves the rate.
        self._next_at = max(self._next_at, now - interval) + interval
        return None

    def settle(self, chat: ChatRef, token: Any, now: float) -> None:
        pass

    def pause(self, chat: ChatRef | None, until: float) -> None:
        # A Matrix rate limit is per sending user: it applies to every room.
        self._pauses.pause(None, until)
        self.rate = max(self.floor, self.rate / 2)
        self._successes = 0

    def succeeded(self) -> None:
        self._successes += 1
        if self.rate < self.ceiling and self._successes >= 20:
            self.rate = min(self.ceiling, self.rate * 1.25)
            self._successes = 0
