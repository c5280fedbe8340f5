"""The ``sqlite`` storage backend: API keys, config history and request logs in one file."""

from ferro import hookimpl

from ferro_storage_sqlite.storage import SQLiteOptions, SQLiteStorage, database_path

__all__ = ["SQLiteOptions", "SQLiteStorage", "database_path"]


@hookimpl
def register_storage(register):
    register("sqlite", SQLiteStorage)
