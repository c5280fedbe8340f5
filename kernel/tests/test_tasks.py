"""stop_task: a background loop is cancelled and awaited; the caller's own cancellation
and the task's own error still come through."""

from __future__ import annotations

import asyncio

import pytest
from ferro import stop_task


async def forever() -> None:
    while True:
        await asyncio.sleep(3600)


async def test_a_running_task_is_stopped_without_raising() -> None:
    task = asyncio.create_task(forever())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled()
    await stop_task(None)
    await stop_task(task)  # an ended task again: nothing


async def test_the_callers_own_cancellation_is_raised() -> None:
    ending = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await ending.wait()

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0)
    stopper.cancel()
    await asyncio.sleep(0)
    ending.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def failing() -> None:
        raise LookupError("broken")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(LookupError):
        await stop_task(task)
