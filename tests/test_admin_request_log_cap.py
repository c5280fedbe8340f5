"""The request log's queue while its database is down: rows wait (up to ``max_queued``),
the rest are dropped and counted, and what waited is written once the database is back."""

import asyncio
import time

from ferro.request_log import RequestLogWriter
from ferro.types import Exchange


class FlakyStore:
    """A request-log store that fails while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.rows: list = []

    async def write_logs(self, rows) -> None:
        if self.down:
            raise ConnectionRefusedError("database is down")
        self.rows.extend(rows)


def exchange(i: int) -> Exchange:
    return Exchange(request_id=f"req-{i}", operation="chat", model="m", provider="p",
                    stream=False, status=200, started=time.time(), duration=0.01)


async def test_the_queue_is_capped_while_the_store_is_down_then_drains():
    store = FlakyStore()
    writer = RequestLogWriter(store, batch_size=10, interval=0.01, max_queued=25,
                              retry_delay=0.01)
    writer.start()
    try:
        for i in range(40):
            writer.record(exchange(i))
        await asyncio.sleep(0.05)  # a few failed attempts
        assert (writer.queued, writer.dropped, writer.written) == (25, 15, 0)
        assert store.rows == []
        store.down = False
        for _ in range(200):  # bounded wait for the retry
            if writer.queued == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await writer.aclose()
    assert [row.request_id for row in store.rows] == [f"req-{i}" for i in range(25)]
    assert (writer.written, writer.dropped) == (25, 15)
