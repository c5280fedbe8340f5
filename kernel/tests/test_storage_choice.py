"""Which store backs keys, config history and request logs: config, environment (the Go
version's variables win), the embedded default of `ferrogw serve`, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from ferro import ConfigError, parse_config
from ferro.storage import open_stores, store_settings, with_embedded_storage


def test_the_environment_wins_over_the_config_and_aliases_are_understood() -> None:
    config = parse_config('{"storage": {"keys": {"backend": "sqlite", "dsn": "k.db"}}}')
    assert store_settings(config, "keys", {}) == ("sqlite", "k.db")
    env = {"API_KEY_STORE_BACKEND": "postgresql", "API_KEY_STORE_DSN": "postgres://h/db",
           "CONFIG_STORE_BACKEND": "memory", "REQUEST_LOG_STORE_BACKEND": ""}
    assert store_settings(config, "keys", env) == ("postgres", "postgres://h/db")
    assert store_settings(config, "config", env) == ("sqlite", ":memory:")
    assert store_settings(config, "request_logs", env) == ("", "")


def test_serve_keeps_unset_stores_in_sqlite_under_the_data_directory(tmp_path: Any) -> None:
    config = parse_config('{"storage": {"request_logs": {"backend": "none"}}}')
    with_embedded_storage(config, str(tmp_path), env={"CONFIG_STORE_BACKEND": "postgres"})
    assert (config.storage.keys.backend, config.storage.keys.dsn) == (
        "sqlite", str(tmp_path / "ferro.db"))
    assert config.storage.config.backend == ""  # the environment chooses it
    assert config.storage.request_logs.backend == "none"
    default = with_embedded_storage(parse_config("{}"), env={"FERRO_DATA_DIR": "/var/ferro"})
    assert default.storage.keys.dsn == "/var/ferro/ferro.db"


async def test_an_unknown_backend_or_a_missing_dsn_stops_the_start(memory_storage: Any) -> None:
    config = parse_config('{"storage": {"keys": {"backend": "mongo"}}}')
    with pytest.raises(ConfigError, match=r"unsupported storage backend 'mongo'.*installed: "
                                          r"kernel-test-memory"):
        await open_stores(config, {"kernel-test-memory": memory_storage}, {})
    config = parse_config('{"storage": {"keys": {"backend": "kernel-test-memory"}}}')
    with pytest.raises(ConfigError, match=r"dsn is required.*API_KEY_STORE_DSN"):
        await open_stores(config, {"kernel-test-memory": memory_storage}, {})


async def test_stores_on_one_database_share_one_backend(memory_storage: Any) -> None:
    config = parse_config('{"storage": {"keys": {"backend": "kernel-test-memory", "dsn": "a"},'
                          ' "request_logs": {"backend": "kernel-test-memory", "dsn": "b"}}}')
    stores = await open_stores(config, {"kernel-test-memory": memory_storage},
                               {"CONFIG_STORE_BACKEND": "kernel-test-memory",
                                "CONFIG_STORE_DSN": "a"})
    assert stores.keys is stores.config and stores.request_logs is not stores.keys
    assert all(s.opened for s in (stores.keys, stores.request_logs))
    await stores.close()
    assert stores.keys.closed and stores.request_logs.closed  # type: ignore[union-attr]


def test_a_storage_section_typo_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"storage\.keys\.backnd"):
        parse_config('{"storage": {"keys": {"backnd": "sqlite"}}}')
