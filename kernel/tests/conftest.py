"""Fixtures of the kernel's own tests: an in-memory :class:`ferro.Storage`, since they run
without any storage package installed (only what the kernel calls is real)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from ferro import hookimpl, make_plugin_manager
from ferro.storage import KeyRecord, KeyUsage, LogRow
from ferro.testing.stub import StubPlugin


class MemoryStorage:
    """Keys and request-log rows in dicts; ``down`` makes every call fail."""

    instances: list[MemoryStorage] = []

    def __init__(self, dsn: str = "", options: Any = None) -> None:
        self.dsn = dsn
        self.keys: dict[str, KeyRecord] = {}
        self.rows: list[LogRow] = []
        self.down = False
        self.opened = self.closed = False
        MemoryStorage.instances.append(self)

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("storage is down")

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def create_key(self, record: KeyRecord) -> None:
        self._check()
        if record.id in self.keys or any(k.key_hash == record.key_hash
                                         for k in self.keys.values()):
            raise ValueError("duplicate key")
        self.keys[record.id] = attrs.evolve(record)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        self._check()
        record = self.keys.get(key_id)
        return attrs.evolve(record) if record else None

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        self._check()
        for record in self.keys.values():
            if record.key_hash == key_hash:
                return attrs.evolve(record)
        return None

    async def list_keys(self) -> list[KeyRecord]:
        return [attrs.evolve(r) for r in self.keys.values()]

    async def update_key(self, record: KeyRecord) -> bool:
        self._check()
        old = self.keys.get(record.id)
        if old is None:
            return False
        self.keys[record.id] = attrs.evolve(record, spent=old.spent,
                                            usage_count=old.usage_count,
                                            last_used_at=old.last_used_at)
        return True

    async def delete_key(self, key_id: str) -> bool:
        return self.keys.pop(key_id, None) is not None

    async def count_keys(self) -> int:
        self._check()
        return len(self.keys)

    async def record_usage(self, usage: list[KeyUsage]) -> None:
        self._check()
        for entry in usage:
            record = self.keys.get(entry.key_id)
            if record is not None:
                record.usage_count += entry.requests
                record.spent += entry.cost
                record.last_used_at = max(filter(None, (record.last_used_at,
                                                        entry.last_used_at)))

    async def write_logs(self, rows: list[LogRow]) -> None:
        self._check()
        self.rows.extend(rows)

    async def append_config(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    latest_config = get_config = config_history = append_config
    list_logs = log_stats = delete_logs = append_config


class MemoryStoragePlugin:
    @hookimpl
    def register_storage(self, register: Any) -> None:
        register("kernel-test-memory", MemoryStorage)


@pytest.fixture
def storage_plugins() -> Any:
    """A plugin manager with the stub provider and storage backend ``kernel-test-memory``
    (:class:`MemoryStorage`; the instances built are in ``MemoryStorage.instances``)."""
    MemoryStorage.instances.clear()
    pm = make_plugin_manager(env={})
    pm.register(StubPlugin(), name="ferro-testing-stub")
    pm.register(MemoryStoragePlugin(), name="kernel-test-memory")
    return pm


@pytest.fixture
def memory_storage() -> type[MemoryStorage]:
    """The :class:`MemoryStorage` class (test modules cannot import conftest)."""
    return MemoryStorage
