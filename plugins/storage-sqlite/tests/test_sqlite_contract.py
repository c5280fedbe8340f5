"""The storage contract against a SQLite file, and against an in-memory database."""

from ferro.testing import StorageContract
from ferro_storage_sqlite import SQLiteStorage


class TestSQLiteFile(StorageContract):
    backend = "sqlite"

    async def make_storage(self, tmp_path):
        storage = SQLiteStorage(str(tmp_path / "data" / "ferro.db"))
        await storage.open()
        return storage


class TestSQLiteMemory(StorageContract):
    backend = "sqlite"
    shares_database = False

    async def make_storage(self, tmp_path):
        storage = SQLiteStorage(":memory:")
        await storage.open()
        return storage
