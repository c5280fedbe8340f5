"""A fresh schema for each test, dropped afterwards, in the machine's PostgreSQL."""

import pytest


@pytest.fixture
def schema(postgres_schema):
    """The test kit's ``postgres_schema``: skips without a server."""
    return postgres_schema
