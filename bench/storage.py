"""Request-log write rate of each storage backend, in rows per second.

For each backend: ``--rows`` rows written through ``write_logs`` in batches of ``--batch``
(as the request-log writer flushes them), then ``--single`` rows written one per call (the
cost of a transaction each). SQLite writes to a file in a temporary directory; PostgreSQL
to a temporary schema of the database at ``FERRO_TEST_POSTGRES_DSN`` (skipped when no
server answers), dropped afterwards.

    .venv/bin/python bench/storage.py [--rows 20000] [--batch 200] [--single 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from ferro.storage import LogRow, Storage, utcnow
from ferro.testing.storage_contract import POSTGRES_DSN, postgres_answers


def rows(count: int, start: int) -> list[LogRow]:
    now = utcnow()
    return [LogRow(created_at=now + timedelta(microseconds=i), request_id=f"req-{start + i}",
                   trace_id=uuid.uuid4().hex, key_id="key-bench", operation="chat",
                   provider=("openai", "anthropic", "groq")[i % 3], model="gpt-4o-mini",
                   status=200, stage="after_request", latency_ms=41.5, prompt_tokens=120,
                   completion_tokens=48, total_tokens=168, cost=0.000123, attempts=1)
            for i in range(count)]


async def rate(storage: Storage, total: int, batch: int) -> float:
    """Rows per second writing ``total`` rows, ``batch`` per ``write_logs`` call."""
    batches = [rows(batch, start) for start in range(0, total, batch)]
    began = time.perf_counter()
    for chunk in batches:
        await storage.write_logs(chunk)
    return total / (time.perf_counter() - began)


@asynccontextmanager
async def sqlite() -> AsyncIterator[Storage]:
    from ferro_storage_sqlite import SQLiteStorage

    with tempfile.TemporaryDirectory() as directory:
        storage = SQLiteStorage(f"{directory}/bench.db")
        await storage.open()
        try:
            yield storage
        finally:
            await storage.close()


@asynccontextmanager
async def postgres() -> AsyncIterator[Storage]:
    import asyncpg
    from ferro_storage_postgres import PostgresOptions, PostgresStorage

    schema = f"ferro_bench_{uuid.uuid4().hex[:12]}"
    storage = PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=schema))
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()
        conn = await asyncpg.connect(POSTGRES_DSN)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


BACKENDS: dict[str, Callable[[], Any]] = {"sqlite": sqlite, "postgres": postgres}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--single", type=int, default=2_000)
    args = parser.parse_args()
    print(f"{'backend':<10} {'batched (' + str(args.batch) + '/call)':>22} {'single row':>14}")
    for name, backend in BACKENDS.items():
        if name == "postgres" and not postgres_answers():
            print(f"{name:<10} skipped: no PostgreSQL server for {POSTGRES_DSN}")
            continue
        async with backend() as storage:
            batched = await rate(storage, args.rows, args.batch)
            single = await rate(storage, args.single, 1)
        print(f"{name:<10} {batched:>16,.0f} rows/s {single:>9,.0f} rows/s")


if __name__ == "__main__":
    asyncio.run(main())
