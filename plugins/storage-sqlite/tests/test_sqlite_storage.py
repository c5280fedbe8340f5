"""What is particular to SQLite: DSN forms, options, the file's settings and schema, and
several processes opening one new file at once."""

import asyncio
import os
import sqlite3
import sys

import pytest
from ferro import ConfigError
from ferro.config import Config
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.storage import LogFilter, open_stores
from ferro.storage_sql import MIGRATIONS
from ferro.testing import as_config
from ferro_storage_sqlite import SQLiteOptions, SQLiteStorage, database_path


@pytest.mark.parametrize(("dsn", "path"), [
    ("ferro.db", "ferro.db"),
    ("data/ferro.db", "data/ferro.db"),
    ("/var/lib/ferro/ferro.db", "/var/lib/ferro/ferro.db"),
    ("sqlite:data/ferro.db", "data/ferro.db"),
    ("sqlite:///var/lib/ferro/ferro.db", "/var/lib/ferro/ferro.db"),
    (":memory:", ":memory:"),
    ("sqlite::memory:", ":memory:"),
    ("", os.path.join("ferro-data", "ferro.db")),
])
def test_dsn_forms(dsn, path):
    assert database_path(dsn) == path


def test_a_relative_path_after_sqlite_slashes_is_a_config_error():
    with pytest.raises(ConfigError, match="absolute path"):
        SQLiteStorage("sqlite://data/ferro.db")


async def test_missing_directories_are_created_and_the_file_is_in_wal_mode(tmp_path):
    path = tmp_path / "a" / "b" / "ferro.db"
    storage = SQLiteStorage(f"sqlite:{path}")
    await storage.open()
    await storage.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [v for (v,) in conn.execute("SELECT version FROM ferro_schema_migrations")]
        tables = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert versions == [m.version for m in MIGRATIONS]
    assert {"api_keys", "config_history", "request_logs"} <= tables


async def test_opening_again_applies_no_migration_twice(tmp_path):
    path = str(tmp_path / "ferro.db")
    for _ in range(3):
        storage = SQLiteStorage(path)
        await storage.open()
        await storage.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ferro_schema_migrations").fetchone()[0] == \
            len(MIGRATIONS)


async def test_each_in_memory_instance_is_its_own_database():
    one, two = SQLiteStorage(":memory:"), SQLiteStorage(":memory:")
    await one.open()
    await two.open()
    await one.append_config({"v": 1}, "create")
    assert await two.latest_config() is None
    await one.close()
    await two.close()


async def test_using_a_closed_store_says_to_open_it(tmp_path):
    storage = SQLiteStorage(str(tmp_path / "ferro.db"))
    with pytest.raises(RuntimeError, match="not open"):
        await storage.count_keys()


async def test_options_come_from_the_config_and_are_checked(tmp_path):
    registry = build_registry(make_plugin_manager(env={}))
    store = {"backend": "sqlite", "dsn": str(tmp_path / "ferro.db"),
             "options": {"busy_timeout": "250ms"}}
    stores = await open_stores(as_config({"storage": {"keys": store}}), registry.storage, {})
    try:
        assert stores.keys.options == SQLiteOptions(busy_timeout=0.25)
    finally:
        await stores.close()
    store["options"] = {"busy_timeout": 0}
    with pytest.raises(ConfigError, match="busy_timeout must be positive"):
        await open_stores(as_config({"storage": {"keys": store}}), registry.storage, {})


async def test_the_three_stores_share_one_file(tmp_path):
    path = str(tmp_path / "ferro.db")
    registry = build_registry(make_plugin_manager(env={}))
    env = {"API_KEY_STORE_BACKEND": "sqlite", "API_KEY_STORE_DSN": path,
           "CONFIG_STORE_BACKEND": "sqlite", "CONFIG_STORE_DSN": path,
           "REQUEST_LOG_STORE_BACKEND": "sqlite", "REQUEST_LOG_STORE_DSN": path}
    stores = await open_stores(Config(), registry.storage, env)
    try:
        assert stores.keys is stores.config is stores.request_logs
        assert await stores.request_logs.list_logs(LogFilter(), 1, 0) == ([], 0)
    finally:
        await stores.close()


#: Run by each process: open the file, append one config entry, print its version.
CHILD = """
import asyncio, sys
from ferro_storage_sqlite import SQLiteStorage

async def main():
    storage = SQLiteStorage(sys.argv[1])
    await storage.open()
    entry = await storage.append_config({"pid": 1}, "update")
    await storage.close()
    print(entry.version)

asyncio.run(main())
"""


async def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    path = str(tmp_path / "shared.db")
    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    results = [await asyncio.wait_for(child.communicate(), timeout=60) for child in children]
    assert [child.returncode for child in children] == [0] * 4, results
    assert sorted(int(out) for out, _ in results) == [1, 2, 3, 4]
