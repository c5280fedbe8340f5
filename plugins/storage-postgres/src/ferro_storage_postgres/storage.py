"""Storage in PostgreSQL, through an asyncpg connection pool.

Each write is one transaction on a pooled connection; PostgreSQL isolates concurrent ones,
in this process and in others. Where concurrent writers would collide, a transaction-scoped
advisory lock serialises them: applying migrations (so replicas starting together migrate
once) and taking the next config version. Usage counters are added by one batched
``UPDATE`` per flush, after locking the affected rows in key order so that concurrent
flushes cannot deadlock.

With ``schema`` set, every table lives in that schema (created if missing): several
gateways, or tests, can share one database without seeing each other's rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import attrs
from ferro import ConfigError, Duration, KeyUsage
from ferro.storage_sql import POSTGRES, SQLConnection, SQLStorage, merge_usage

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: Locks the rows a usage flush updates, in a fixed order, before it updates them.
_LOCK_KEYS = "SELECT id FROM api_keys WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
#: Adds every key's usage of one flush in one statement.
_ADD_USAGE = """UPDATE api_keys AS k
SET usage_count = k.usage_count + u.requests,
    spent = k.spent + u.cost,
    last_used_at = GREATEST(k.last_used_at, u.last_used_at)
FROM unnest($1::text[], $2::bigint[], $3::double precision[], $4::timestamptz[])
    AS u(id, requests, cost, last_used_at)
WHERE k.id = u.id"""


def _positive(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive (got {value})")


def _schema_name(_instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value and not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{attribute.name} must be a plain identifier (letters, digits and "
                         f"underscores, not starting with a digit, at most 63), got {value!r}")


@attrs.define
class PostgresOptions:
    #: Connections the pool keeps open, and the most it opens.
    min_size: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    max_size: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    #: The schema holding the tables (created if missing); empty: the DSN's search_path.
    schema: str = attrs.field(default="", validator=_schema_name)
    #: The longest one statement may run before it fails.
    command_timeout: Duration = attrs.field(default=Duration(30.0), validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed "
                             f"max_size ({self.max_size})")


def _lock_key(purpose: str, schema: str) -> int:
    """A stable 64-bit advisory lock key for ``purpose`` in ``schema``."""
    digest = hashlib.sha256(f"ferro:{purpose}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Connection:
    """An asyncpg connection as :class:`ferro.storage_sql.SQLConnection`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> Sequence[Any]:
        return await self._conn.fetch(sql, *args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        status = await self._conn.execute(sql, *args)  # e.g. "UPDATE 3"
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)


class PostgresStorage(SQLStorage):
    Options = PostgresOptions
    dialect = POSTGRES
    unique_violation = asyncpg.UniqueViolationError

    def __init__(self, dsn: str, options: PostgresOptions | None = None) -> None:
        if not dsn.startswith(("postgres://", "postgresql://")):
            raise ConfigError(f"postgres dsn must be a postgres:// or postgresql:// URL "
                              f"(postgresql://user:password@host:5432/database), got {dsn!r}")
        self.dsn = dsn
        self.options = options or PostgresOptions()
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        where = f", schema={self.options.schema!r}" if self.options.schema else ""
        return f"PostgresStorage({_without_password(self.dsn)!r}{where})"

    async def open(self) -> None:
        schema = self.options.schema
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=self.options.min_size, max_size=self.options.max_size,
            command_timeout=self.options.command_timeout,
            server_settings={"search_path": f'"{schema}"'} if schema else None)
        try:
            async with self.write() as conn:
                await self._advisory_lock(conn, "migrations")
                if schema:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                await self.migrate(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self!r} is not open: await open() first")
        return self._pool

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_Connection]:
        async with self._require_pool().acquire() as conn:
            yield _Connection(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Connection]:
        async with self._require_pool().acquire() as conn, conn.transaction():
            yield _Connection(conn)

    async def _advisory_lock(self, conn: SQLConnection, purpose: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)",
                           [_lock_key(purpose, self.options.schema)])

    async def lock_config_history(self, conn: SQLConnection) -> None:
        await self._advisory_lock(conn, "config_history")

    async def record_usage(self, usage: Sequence[KeyUsage]) -> None:
        merged = merge_usage(usage)
        if not merged:
            return
        ids = [u.key_id for u in merged]
        async with self.write() as conn:
            await conn.fetch(_LOCK_KEYS, [ids])
            await conn.execute(_ADD_USAGE, [
                ids, [u.requests for u in merged], [u.cost for u in merged],
                [self.dialect.to_db_time(u.last_used_at) for u in merged]])


def _without_password(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", dsn)
