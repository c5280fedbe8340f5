"""A fresh schema for each test, dropped afterwards, in the machine's PostgreSQL."""

import uuid

import asyncpg
import pytest
from ferro.testing import POSTGRES_DSN


@pytest.fixture
async def schema():
    name = f"ferro_test_{uuid.uuid4().hex[:16]}"
    yield name
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()
