"""The ``postgres`` storage backend: API keys, config history and request logs in
PostgreSQL, shared by every gateway process that points at the same database."""

from ferro import hookimpl

from ferro_storage_postgres.storage import PostgresOptions, PostgresStorage

__all__ = ["PostgresOptions", "PostgresStorage"]


@hookimpl
def register_storage(register):
    register("postgres", PostgresStorage)
