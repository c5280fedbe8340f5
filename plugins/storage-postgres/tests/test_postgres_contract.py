"""The storage contract against the real PostgreSQL, each test in a schema of its own.
Every instance a test opens has its own pool, as separate gateway processes would."""

import pytest
from ferro.testing import POSTGRES_DSN, StorageContract, needs_postgres
from ferro_storage_postgres import PostgresOptions, PostgresStorage

pytestmark = needs_postgres


class TestPostgres(StorageContract):
    backend = "postgres"

    @pytest.fixture(autouse=True)
    def _schema(self, schema):
        self.schema = schema

    async def make_storage(self, tmp_path):
        storage = PostgresStorage(POSTGRES_DSN, PostgresOptions(schema=self.schema, max_size=4))
        await storage.open()
        return storage
