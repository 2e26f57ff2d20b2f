"""Stopping background tasks: the task ends, and the caller's own cancellation is neither swallowed
nor invented."""

from __future__ import annotations

import asyncio

import pytest

from floorbridge.core.tasks import cancel_and_wait


async def forever(cleaned: list[str], name: str, cleanup_s: float = 0.0) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        await asyncio.sleep(cleanup_s)
        cleaned.append(name)


async def test_the_tasks_are_cancelled_and_have_ended_when_it_returns() -> None:
    cleaned: list[str] = []
    one = asyncio.create_task(forever(cleaned, "one", 0.05))
    two = asyncio.create_task(forever(cleaned, "two"))
    await asyncio.sleep(0)
    await cancel_and_wait(one, None, two)
    assert one.cancelled() and two.cancelled()
    assert sorted(cleaned) == ["one", "two"]  # their cleanup ran to its end before the return


async def test_a_caller_cancelled_while_it_waits_is_cancelled() -> None:
    cleaned: list[str] = []
    after: list[str] = []
    slow = asyncio.create_task(forever(cleaned, "slow", cleanup_s=3600))

    async def stop() -> None:
        await cancel_and_wait(slow)
        after.append("carried on")

    stopping = asyncio.create_task(stop())
    await asyncio.sleep(0.05)  # waiting for the slow cleanup
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled()
    assert after == []  # a suppress(CancelledError) would have carried on here


async def test_in_the_cleanup_of_a_task_already_cancelled_it_stops_the_task_and_goes_on() -> None:
    cleaned: list[str] = []
    steps: list[str] = []
    background = asyncio.create_task(forever(cleaned, "background"))

    async def service() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await cancel_and_wait(background)
            steps.append("the next step of the shutdown")

    running = asyncio.create_task(service())
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert background.cancelled() and cleaned == ["background"]
    assert steps == ["the next step of the shutdown"]


async def test_a_task_that_had_failed_raises_its_error_once_the_others_have_ended() -> None:
    cleaned: list[str] = []

    async def broken() -> None:
        raise RuntimeError("the loop broke")

    failed = asyncio.create_task(broken())
    other = asyncio.create_task(forever(cleaned, "other", 0.02))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="the loop broke"):
        await cancel_and_wait(failed, other)
    assert other.cancelled() and cleaned == ["other"]


async def test_under_wait_for_the_timeout_still_fires() -> None:
    cleaned: list[str] = []
    stubborn = asyncio.create_task(forever(cleaned, "stubborn", cleanup_s=3600))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cancel_and_wait(stubborn), 0.1)
