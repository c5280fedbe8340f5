"""The request log: one row per completed exchange, written in batches off the request path.

:meth:`RequestLogWriter.record` (an ``exchange_completed`` listener) turns the exchange into
a :class:`ferro.storage.LogRow` and queues it; a background task writes what is queued every
``interval`` (a second), or as soon as ``batch_size`` rows wait. Rows that arrive while a
batch is written wait for the next, so under load every batch is a full one. Few large
batches: a write transaction costs about as much as a few hundred rows do (SQLite: 14 us a
row in batches of 500, 9 in batches of 2,000). The queue is bounded (``max_queued``): while
the database is down, rows wait there and failed batches are retried, and once it is full
new rows are dropped and counted (:attr:`dropped`), so memory never grows without bound.
At shutdown, :meth:`aclose` writes everything still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime

from ferro.storage import LogRow, Storage
from ferro.tasks import stop_task
from ferro.types import Exchange

__all__ = ["RequestLogWriter", "log_row"]

log = logging.getLogger("ferro.request_log")

#: Longest error message kept in a row.
MAX_ERROR_CHARS = 2000


def log_row(exchange: Exchange) -> LogRow:
    usage, error = exchange.usage, exchange.error
    return LogRow(
        created_at=datetime.fromtimestamp(exchange.started, UTC),
        request_id=exchange.request_id,
        trace_id=exchange.trace.trace_id if exchange.trace is not None else "",
        key_id=exchange.key_id or "",
        operation=exchange.operation,
        provider=exchange.provider,
        model=exchange.model,
        status=exchange.status,
        stage="after_request" if error is None else "on_error",
        latency_ms=round(exchange.duration * 1000, 3),
        ttfb_ms=round(exchange.ttfb * 1000, 3) if exchange.ttfb is not None else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cost=exchange.cost,
        attempts=exchange.attempts,
        stream=exchange.stream,
        error_type=error.type if error is not None else "",
        error_message=error.message[:MAX_ERROR_CHARS] if error is not None else "",
    )


class RequestLogWriter:
    def __init__(self, storage: Storage, *, batch_size: int = 2000, interval: float = 1.0,
                 max_queued: int = 50_000, retry_delay: float = 1.0) -> None:
        self.storage = storage
        self.batch_size = batch_size
        self.interval = interval
        self.max_queued = max_queued
        self.retry_delay = retry_delay
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._queue: deque[LogRow] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ferro-request-log")

    def record(self, exchange: Exchange) -> None:
        if len(self._queue) >= self.max_queued:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("request log queue full (%d rows): %d rows dropped so far",
                            self.max_queued, self.dropped)
            return
        self._queue.append(log_row(exchange))
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            while self._queue:
                if not await self._write_batch():
                    await asyncio.sleep(self.retry_delay)
                    break
                if len(self._queue) < self.batch_size:
                    # what came in during the write waits to make a batch, or for the next
                    # interval: written at once, it would be a small batch after each large
                    # one, paying a commit (and SQLite its pages) for a few rows
                    self._wake.clear()
                    break

    async def _write_batch(self) -> bool:
        """Write the oldest queued rows; False (rows kept, in order) when the write failed."""
        count = min(len(self._queue), self.batch_size)
        batch = [self._queue.popleft() for _ in range(count)]
        try:
            await self.storage.write_logs(batch)
        except Exception as exc:
            self._queue.extendleft(reversed(batch))
            self.failures += 1
            if self.failures == 1 or self.failures % 30 == 0:
                log.error("writing %d request log rows failed (%s); %d rows queued",
                          count, exc, len(self._queue))
            return False
        self.written += count
        return True

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop the writer, then write what is queued, trying for up to ``timeout``."""
        await stop_task(self._task)
        self._task = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._queue:
            if not await self._write_batch():
                if loop.time() + self.retry_delay >= deadline:
                    log.error("request log: %d rows could not be written at shutdown",
                              len(self._queue))
                    self.dropped += len(self._queue)
                    self._queue.clear()
                    return
                await asyncio.sleep(self.retry_delay)
