"""Background tasks: how the gateway's own loops, and plugins' loops, are stopped."""

from __future__ import annotations

import asyncio

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` (nothing for None or a task that has ended) and wait until it has
    stopped. Its cancellation is not raised; the caller's own is, and so is an error the
    task ended with."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
