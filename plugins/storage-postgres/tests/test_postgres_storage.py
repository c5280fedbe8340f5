"""What is particular to PostgreSQL: DSNs, options, where the tables go, the migrations
record, and several pools writing at once."""

import asyncio

import asyncpg
import pytest
from ferro import ConfigError
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.storage import KeyUsage, LogFilter, open_stores
from ferro.storage_sql import MIGRATIONS
from ferro.testing import POSTGRES_DSN, as_config, needs_postgres
from ferro.testing.storage_contract import make_key, make_row
from ferro_storage_postgres import PostgresOptions, PostgresStorage


@pytest.mark.parametrize("dsn", ["", "127.0.0.1:5432/test", "mysql://db/ferro", "ferro.db"])
def test_a_dsn_that_is_not_a_postgres_url_is_a_config_error(dsn):
    with pytest.raises(ConfigError, match="postgresql://"):
        PostgresStorage(dsn)


def test_the_password_is_not_shown():
    storage = PostgresStorage("postgresql://ferro:s3cret@db:5432/ferro")
    assert "s3cret" not in repr(storage)


@pytest.mark.parametrize("options", [{"schema": "ferro; DROP TABLE x"}, {"schema": "1abc"},
                                     {"min_size": 5, "max_size": 2}, {"max_size": 0},
                                     {"command_timeout": 0}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        PostgresOptions(**options)


@needs_postgres
async def test_options_come_from_the_config(schema):
    registry = build_registry(make_plugin_manager(env={}))
    config = as_config({"storage": {"request_logs": {
        "backend": "postgresql", "dsn": POSTGRES_DSN,
        "options": {"schema": schema, "max_size": 3, "command_timeout": "5s"}}}})
    stores = await open_stores(config, registry.storage, {})
    try:
        assert stores.request_logs.options == PostgresOptions(schema=schema, max_size=3,
                                                              command_timeout=5.0)
        assert stores.keys is None
    finally:
        await stores.close()


@needs_postgres
async def test_tables_and_the_migrations_record_live_in_the_schema(schema):
    for _ in range(2):  # opening again applies nothing twice
        storage = PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=schema))
        await storage.open()
        await storage.close()
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        tables = {r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)}
        versions = [r["version"] for r in await conn.fetch(
            f'SELECT version FROM "{schema}".ferro_schema_migrations ORDER BY version')]
    finally:
        await conn.close()
    assert tables == {"api_keys", "config_history", "request_logs", "ferro_schema_migrations"}
    assert versions == [m.version for m in MIGRATIONS]


@needs_postgres
async def test_schemas_keep_gateways_apart(schema):
    other_schema = schema + "_b"
    one = PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=schema))
    two = PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=other_schema))
    await one.open()
    await two.open()
    try:
        await one.append_config({"v": 1}, "create")
        assert await two.latest_config() is None
        assert (await two.append_config({"v": 1}, "create")).version == 1
    finally:
        await one.close()
        await two.close()
        conn = await asyncpg.connect(POSTGRES_DSN)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE')
        await conn.close()


@needs_postgres
async def test_pools_writing_at_once_lose_nothing(schema):
    """Four instances, each its own pool as four gateway processes would have, write keys'
    usage, config versions and log rows at the same time."""
    instances = [PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=schema, max_size=3))
                 for _ in range(4)]
    await asyncio.gather(*(s.open() for s in instances))
    try:
        keys = [make_key(n) for n in range(1, 4)]
        for key in keys:
            await instances[0].create_key(key)
        rounds = 15

        async def work(storage: PostgresStorage, i: int) -> int:
            # every flush touches every key, in an order that differs between flushes
            usage = [KeyUsage(k.id, 1, k.created_at, 0.5) for k in keys]
            await storage.record_usage(usage[i % 3:] + usage[:i % 3])
            await storage.write_logs([make_row(i * 5 + n) for n in range(5)])
            return (await storage.append_config({"i": i}, "update")).version

        versions = await asyncio.gather(*(work(s, i) for s in instances for i in range(rounds)))
        total = len(instances) * rounds
        assert sorted(versions) == list(range(1, total + 1))
        for key in await instances[1].list_keys():
            assert (key.usage_count, key.spent) == (total, total * 0.5)
        assert (await instances[2].list_logs(LogFilter(), 1, 0))[1] == total * 5
    finally:
        await asyncio.gather(*(s.close() for s in instances))
