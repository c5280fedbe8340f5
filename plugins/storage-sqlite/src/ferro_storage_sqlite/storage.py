"""Storage in a SQLite file (or in memory), through aiosqlite.

The file is opened in WAL mode with ``synchronous=NORMAL``: readers never wait for the
writer, and a commit costs no fsync (a power loss may lose the last commits, never corrupt
the file). Two connections are kept: one for reading, one for writing. Writes are
serialised by an asyncio lock and each runs under ``BEGIN IMMEDIATE``, which takes the
file's write lock up front, so writers in other processes wait (up to ``busy_timeout``)
instead of failing half-way. Migrations run the same way, so processes that open a new
file at the same moment apply them once.

An in-memory database (``:memory:``) is private to its instance and gone when it closes;
it uses one connection for reads and writes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import attrs
from ferro import ConfigError, Duration
from ferro.storage import EMBEDDED_DIR, EMBEDDED_FILE
from ferro.storage_sql import LOG_COLUMNS, SQLITE, SQLStorage

MEMORY = ":memory:"
#: Seconds between tries of switching a file that another connection holds to WAL.
WAL_RETRY = 0.01
#: Where an empty DSN puts the file (the embedded default's directory and name).
DEFAULT_PATH = os.path.join(EMBEDDED_DIR, EMBEDDED_FILE)


def _positive(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive (got {value})")


@attrs.define
class SQLiteOptions:
    #: How long a write waits for another process's write lock before it fails.
    busy_timeout: Duration = attrs.field(default=Duration(5.0), validator=_positive)


def database_path(dsn: str) -> str:
    """The file a DSN names: a path, ``sqlite:path``, ``sqlite:///absolute/path``, or
    ``:memory:``; an empty DSN is ``ferro-data/ferro.db``."""
    text = dsn.strip()
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ConfigError(f"sqlite dsn {dsn!r}: after sqlite:// comes an absolute path "
                              f"(sqlite:///var/lib/ferro/ferro.db); for a relative one "
                              f"write sqlite:{path} or just {path}")
    else:
        path = text.removeprefix("sqlite:")
    if path == MEMORY:
        return MEMORY
    return os.path.expanduser(path or DEFAULT_PATH)


class _Connection:
    """An aiosqlite connection as :class:`ferro.storage_sql.SQLConnection`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> Sequence[Any]:
        return await self._conn.execute_fetchall(sql, args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, args)
        changed = cursor.rowcount
        await cursor.close()
        return changed

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)


def _parameter_limit() -> int:
    """How many parameters one statement may have in the SQLite this process uses."""
    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


class SQLiteStorage(SQLStorage):
    Options = SQLiteOptions
    dialect = SQLITE
    unique_violation = sqlite3.IntegrityError
    #: sqlite3 lets go of the GIL at each step of a statement, and the event loop takes it:
    #: one-row INSERTs would pass it to and fro once per row. Up to 500 rows per INSERT, as
    #: many as the SQLite linked in takes parameters for (999 in old builds, 32,766 since
    #: 3.32): from 52 rows to 500, a row cost 14 % less CPU.
    log_rows_per_insert = min(500, _parameter_limit() // len(LOG_COLUMNS))

    def __init__(self, dsn: str, options: SQLiteOptions | None = None) -> None:
        self.path = database_path(dsn)
        self.options = options or SQLiteOptions()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    async def open(self) -> None:
        if not self.in_memory:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            self._writer = await self._connect()
            self._reader = self._writer if self.in_memory else await self._connect()
            async with self.write() as conn:
                await self.migrate(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        if reader is not None and reader is not writer:
            await reader.close()
        if writer is not None:
            await writer.close()

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: no implicit transactions; write() says BEGIN and COMMIT.
        conn = await aiosqlite.connect(self.path, timeout=self.options.busy_timeout,
                                       isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            await self._use_wal(conn)
            await conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _use_wal(self, conn: aiosqlite.Connection) -> None:
        """Switch the file to WAL. The switch takes the file's lock without waiting for it
        (the busy timeout does not apply), so connections opening a new file at once retry
        it, within the busy timeout."""
        deadline = time.monotonic() + self.options.busy_timeout
        while True:
            try:
                await conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(WAL_RETRY)

    def _connection(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise RuntimeError(f"{self!r} is not open: await open() first")
        return conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_Connection]:
        conn = self._connection(self._reader)
        if conn is self._writer:  # in memory: do not read inside another task's write
            async with self._write_lock:
                yield _Connection(conn)
        else:
            yield _Connection(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Connection]:
        async with self._write_lock:
            conn = self._connection(self._writer)
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Connection(conn)
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
