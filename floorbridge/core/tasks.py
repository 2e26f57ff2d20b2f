"""Stopping a background task: cancel it and wait until it has ended.

The usual `task.cancel(); with suppress(CancelledError): await task` cannot tell the task's end
from a cancellation of the caller while it waits, and swallows the latter: a `stop()` run under
`asyncio.wait_for` or in a task being shut down would carry on past its own cancellation (and
`wait_for`'s timeout would not fire). Asking the caller's task whether it was cancelled at all is
wrong the other way: a `stop()` in the `finally` of a task already cancelled would give up at its
first step. What tells them apart is whether the caller was cancelled *while waiting*."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks (None is skipped) and wait until each has ended.

    A cancellation of the caller while it waits goes on up; a task that had already failed raises
    its error here, once all have ended."""
    running = [task for task in tasks if task is not None]
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    for task in running:
        task.cancel()
    failed: list[Exception] = []
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            if current is not None and current.cancelling() > before:
                raise
        except Exception as exc:
            failed.append(exc)
    if failed:
        raise failed[0]
