"""Failed sign-ins are limited per address and per username, so a password cannot be guessed at
speed: after `limit` failures within `window` seconds, further attempts are answered 429 with
Retry-After until the oldest failure leaves the window. Kept in the process's memory (each web
process counts its own); a success does not erase failures, so guessing between successes
does not help."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(self, limit: int = 10, window: float = 300.0, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds to wait before another attempt for any of `keys` is taken (0: go ahead)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.limit:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_keys:  # an address flood: forget the stalest
            for key in list(self._failures)[: self._max_keys // 10]:
                del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
