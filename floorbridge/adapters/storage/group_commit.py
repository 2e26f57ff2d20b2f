"""Group commit: writes that arrive while a transaction is in flight wait together and go into
the next one, so a burst of a thousand small writes costs tens of commits, not a thousand (on
SQLite every commit also queues behind the others on the one connection thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """`run` writes a batch in one transaction and returns one result per item, in order. A
    failed batch fails each of its callers with the error; later batches still run."""

    def __init__(self, run: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = 500) -> None:
        self._run = run
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        # Shielded: a caller that gives up does not cancel the writes of the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:  # each caller hears of it; the writer goes on
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writer = None
