"""Web acknowledgements first: while the web API is answering a delegate or a moderator, the
chat side's work (commands, sends) waits a moment.

A chat command's place in a list of speakers is its receipt time, stamped when it arrives, so
letting it wait changes nothing but when its reply goes out; chat replies queue behind the
platforms' rate limits anyway. A web request is answered to a browser that waits. Under a burst
of both, one event loop otherwise serves the web requests behind hundreds of chat commands. The
wait is bounded (`max_defer`): chat work always moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class WebFirst:
    def __init__(self, max_defer: float = 0.25) -> None:
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._max_defer = max_defer

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around a web request that changes something."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def yield_to_web(self) -> None:
        """Wait until no web request is in flight, or `max_defer` seconds."""
        if self._busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._max_defer)
