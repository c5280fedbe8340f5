"""The request log writer: rows in batches off the request path, kept while the store is
down, bounded, and flushed at shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from ferro import Exchange, GatewayError, Usage
from ferro.request_log import RequestLogWriter, log_row
from ferro.tracing import TraceContext


def exchange(n: int, error: GatewayError | None = None) -> Exchange:
    return Exchange(request_id=f"r{n}", operation="chat", model="m", provider="p",
                    stream=True, status=200 if error is None else error.status,
                    started=1_700_000_000.0 + n, duration=0.25, ttfb=0.05,
                    usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
                    cost=0.001, error=error, attempts=2,
                    trace=TraceContext(trace_id="t" * 32, span_id="s" * 16))


def test_a_row_holds_what_the_exchange_says() -> None:
    row = log_row(exchange(1))
    assert (row.request_id, row.trace_id, row.stage, row.status) == ("r1", "t" * 32,
                                                                    "after_request", 200)
    assert (row.latency_ms, row.ttfb_ms, row.total_tokens, row.attempts) == (250.0, 50.0, 5, 2)
    assert row.created_at.tzinfo is not None and row.created_at.timestamp() == 1_700_000_001
    failed = log_row(exchange(2, GatewayError("x" * 5000, status=502, type="upstream_error")))
    assert failed.stage == "on_error" and failed.error_type == "upstream_error"
    assert len(failed.error_message) == 2000


async def test_rows_wait_while_the_store_is_down_and_are_all_written_later(
        memory_storage: Any) -> None:
    storage = memory_storage()
    writer = RequestLogWriter(storage, batch_size=10, interval=0.01, retry_delay=0.01)
    writer.start()
    storage.down = True
    for n in range(25):
        writer.record(exchange(n))
    await asyncio.sleep(0.05)
    assert storage.rows == [] and writer.queued == 25 and writer.failures >= 1
    storage.down = False
    for _ in range(100):
        if writer.queued == 0:
            break
        await asyncio.sleep(0.01)
    assert [r.request_id for r in storage.rows] == [f"r{n}" for n in range(25)]
    await writer.aclose()


async def test_rows_that_arrive_during_a_write_wait_to_make_a_batch(memory_storage: Any) -> None:
    storage = memory_storage()
    written = storage.write_logs
    gate = asyncio.Event()
    batches: list[int] = []

    async def slow_write(rows: Any) -> None:
        batches.append(len(rows))
        await gate.wait()
        await written(rows)

    storage.write_logs = slow_write
    writer = RequestLogWriter(storage, batch_size=10, interval=60)
    writer.start()
    for n in range(10):
        writer.record(exchange(n))
    await asyncio.sleep(0.01)
    for n in range(10, 13):  # while the first batch is being written
        writer.record(exchange(n))
    gate.set()
    await asyncio.sleep(0.02)
    assert batches == [10] and writer.queued == 3  # no small batch straight after
    for n in range(13, 20):
        writer.record(exchange(n))
    await asyncio.sleep(0.02)
    assert batches == [10, 10] and writer.queued == 0
    await writer.aclose()
    assert [r.request_id for r in storage.rows] == [f"r{n}" for n in range(20)]


async def test_the_queue_is_bounded_and_drops_are_counted(memory_storage: Any) -> None:
    storage = memory_storage()
    storage.down = True
    writer = RequestLogWriter(storage, max_queued=100, retry_delay=0.01)
    for n in range(150):
        writer.record(exchange(n))
    assert writer.queued == 100 and writer.dropped == 50
    storage.down = False
    await writer.aclose()
    assert len(storage.rows) == 100 and writer.written == 100


async def test_shutdown_writes_everything_queued(memory_storage: Any) -> None:
    storage = memory_storage()
    writer = RequestLogWriter(storage, batch_size=7, interval=60)
    writer.start()
    for n in range(50):
        writer.record(exchange(n))
    await writer.aclose()
    assert len(storage.rows) == 50 and writer.queued == 0


async def test_shutdown_gives_up_on_a_dead_store_within_its_timeout(memory_storage: Any) -> None:
    storage = memory_storage()
    storage.down = True
    writer = RequestLogWriter(storage, retry_delay=0.05)
    writer.record(exchange(1))
    await asyncio.wait_for(writer.aclose(timeout=0.2), 2)
    assert writer.dropped == 1 and writer.queued == 0
