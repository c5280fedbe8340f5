"""``StorageContract``: the tests every storage backend's package inherits, and the
machine's PostgreSQL for the tests of PostgreSQL backends (``POSTGRES_DSN``,
``needs_postgres``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs
import pytest

from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.storage import KeyRecord, KeyUsage, LogFilter, LogRow, Storage

__all__ = ["POSTGRES_DSN", "StorageContract", "make_key", "make_row", "needs_postgres",
           "postgres_answers"]

# --- the machine's PostgreSQL ---------------------------------------------------------------

#: The PostgreSQL the tests of PostgreSQL backends use (``FERRO_TEST_POSTGRES_DSN``).
POSTGRES_DSN = os.environ.get("FERRO_TEST_POSTGRES_DSN",
                              "postgresql://postgres@127.0.0.1:5432/test")


def postgres_answers(dsn: str = POSTGRES_DSN) -> bool:
    """Whether something listens at ``dsn``'s host and port."""
    url = urlsplit(dsn)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432),
                                      timeout=0.5):
            return True
    except OSError:
        return False


_PG_URL = urlsplit(POSTGRES_DSN)

#: Marks a test that needs the PostgreSQL at :data:`POSTGRES_DSN`: skipped, saying so,
#: without one.
needs_postgres = pytest.mark.skipif(
    not postgres_answers(),
    reason=f"no PostgreSQL server at {_PG_URL.hostname}:{_PG_URL.port or 5432} "
           f"(set FERRO_TEST_POSTGRES_DSN to use another)")


@pytest.fixture
def postgres_schema() -> Any:
    """A fresh schema name on the test PostgreSQL (a backend's ``schema`` option), dropped
    with everything in it after the test; skips, saying why, when no server answers. A
    plain fixture (its drop runs on a loop of its own), so that other fixtures, async or
    parametrized, may ask for it with ``request.getfixturevalue``."""
    if not postgres_answers():
        pytest.skip(needs_postgres.kwargs["reason"])
    import asyncpg  # the PostgreSQL backend's driver: only its tests get here

    name = f"ferro_test_{uuid.uuid4().hex[:16]}"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


# --- records the tests store ----------------------------------------------------------------

#: The time the test records are made around (with microseconds, to see them kept).
T0 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def make_key(n: int, **changes: Any) -> KeyRecord:
    """Key ``key-<n>``, created ``n`` minutes after :data:`T0`, with ``changes`` applied."""
    secret = f"fgw_secret_{n}"
    values: dict[str, Any] = {
        "id": f"key-{n:03d}", "name": f"key {n}",
        "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "display": f"fgw_se...{n:04d}", "scopes": ["inference"],
        "created_at": T0 + timedelta(minutes=n)}
    return KeyRecord(**{**values, **changes})


def make_row(n: int, **changes: Any) -> LogRow:
    """Log row ``req-<n>``, written ``n`` seconds after :data:`T0`, with ``changes`` applied."""
    values: dict[str, Any] = {
        "created_at": T0 + timedelta(seconds=n), "request_id": f"req-{n}",
        "trace_id": f"trace-{n}", "key_id": "key-001", "operation": "chat",
        "provider": "openai", "model": "gpt-4o-mini", "status": 200,
        "stage": "after_request", "latency_ms": 12.5}
    return LogRow(**{**values, **changes})


def stored(row: LogRow, got: LogRow) -> LogRow:
    """``row`` as the store gives it back: with the id it assigned."""
    assert got.id is not None
    return attrs.evolve(row, id=got.id)


class StorageContract:
    """Contract tests every storage backend runs. Subclass it in ``tests/``, set
    :attr:`backend`, and implement :meth:`make_storage`.

    Set :attr:`shares_database` to False for a backend whose instances cannot reach the
    same database (in memory): the persistence and several-instances tests are skipped.
    """

    #: The name the backend registers through ``register_storage``.
    backend: ClassVar[str]
    shares_database: ClassVar[bool] = True

    async def make_storage(self, tmp_path: Any) -> Storage:
        """An opened instance of the backend on this test's database: empty when the test
        starts, and the same database every time it is called within the test."""
        raise NotImplementedError

    # fixtures

    @pytest.fixture
    async def open_storage(self, tmp_path: Any) -> Any:
        """``await open_storage()``: one more opened instance on this test's database;
        each is closed after the test."""
        opened: list[Storage] = []

        async def factory() -> Storage:
            storage = await self.make_storage(tmp_path)
            opened.append(storage)
            return storage

        yield factory
        for storage in opened:
            await storage.close()

    @pytest.fixture
    async def storage(self, open_storage: Any) -> Storage:
        return await open_storage()

    def needs_shared_database(self) -> None:
        if not self.shares_database:
            pytest.skip(f"{type(self).__name__}: each instance has its own database")

    # the backend

    async def test_is_registered_and_implements_storage(self, storage):
        registry = build_registry(make_plugin_manager(env={}))
        assert registry.storage[self.backend] is type(storage)
        assert isinstance(storage, Storage)

    # keys

    async def test_a_key_reads_back_as_created(self, storage):
        plain = make_key(1)
        full = make_key(2, scopes=["admin", "read_only"], models=["gpt-4o", "claude-3"],
                        budget=12.5, expires_at=T0 + timedelta(days=30),
                        revoked_at=T0 + timedelta(days=1), rotated_at=T0 + timedelta(hours=2))
        await storage.create_key(plain)
        await storage.create_key(full)
        assert await storage.get_key(plain.id) == plain
        assert await storage.get_key(full.id) == full
        assert await storage.find_key(full.key_hash) == full

    async def test_unknown_keys_are_none(self, storage):
        await storage.create_key(make_key(1))
        assert await storage.get_key("key-404") is None
        assert await storage.find_key(hashlib.sha256(b"other").hexdigest()) is None

    async def test_keys_are_listed_oldest_first(self, storage):
        for n in (3, 1, 2):
            await storage.create_key(make_key(n))
        assert [k.id for k in await storage.list_keys()] == ["key-001", "key-002", "key-003"]

    async def test_a_taken_id_or_hash_is_refused(self, storage):
        first = make_key(1)
        await storage.create_key(first)
        with pytest.raises(ValueError):
            await storage.create_key(make_key(2, id=first.id))
        with pytest.raises(ValueError):
            await storage.create_key(make_key(3, key_hash=first.key_hash))
        assert await storage.count_keys() == 1
        assert await storage.get_key(first.id) == first

    async def test_update_replaces_the_key_but_not_its_usage(self, storage):
        key = make_key(1)
        await storage.create_key(key)
        await storage.record_usage([KeyUsage(key.id, 3, T0 + timedelta(hours=1), 0.75)])
        changed = make_key(1, name="renamed", key_hash=hashlib.sha256(b"rotated").hexdigest(),
                           display="fgw_ro...tate", scopes=["admin"], models=["m"],
                           budget=5.0, rotated_at=T0 + timedelta(hours=2),
                           expires_at=T0 + timedelta(days=7))
        assert await storage.update_key(changed) is True
        got = await storage.get_key(key.id)
        assert got == attrs.evolve(changed, spent=0.75, usage_count=3,
                                   last_used_at=T0 + timedelta(hours=1))
        assert await storage.find_key(changed.key_hash) == got
        assert await storage.find_key(key.key_hash) is None

    async def test_update_can_clear_dates_and_budget(self, storage):
        key = make_key(1, budget=3.0, expires_at=T0 + timedelta(days=1))
        await storage.create_key(key)
        await storage.update_key(attrs.evolve(key, budget=None, expires_at=None))
        got = await storage.get_key(key.id)
        assert got.budget is None and got.expires_at is None

    async def test_updating_an_unknown_key_is_false(self, storage):
        assert await storage.update_key(make_key(9)) is False
        assert await storage.count_keys() == 0

    async def test_update_to_another_keys_hash_is_refused(self, storage):
        one, two = make_key(1), make_key(2)
        await storage.create_key(one)
        await storage.create_key(two)
        with pytest.raises(ValueError):
            await storage.update_key(attrs.evolve(two, key_hash=one.key_hash))
        assert await storage.get_key(two.id) == two

    async def test_delete_and_count_keys(self, storage):
        await storage.create_key(make_key(1))
        await storage.create_key(make_key(2, revoked_at=T0))
        await storage.create_key(make_key(3, expires_at=T0 - timedelta(days=1)))
        assert await storage.count_keys() == 3  # whatever their status
        assert await storage.delete_key("key-002") is True
        assert await storage.delete_key("key-002") is False
        assert await storage.get_key("key-002") is None
        assert await storage.count_keys() == 2
        assert [k.id for k in await storage.list_keys()] == ["key-001", "key-003"]

    async def test_usage_adds_up_and_last_use_never_goes_back(self, storage):
        await storage.create_key(make_key(1))
        late, early = T0 + timedelta(hours=5), T0 + timedelta(hours=1)
        await storage.record_usage([KeyUsage("key-001", 2, late, 0.5),
                                    KeyUsage("key-001", 1, early, 0.25)])
        await storage.record_usage([KeyUsage("key-001", 4, early, 1.0)])
        got = await storage.get_key("key-001")
        assert (got.usage_count, got.spent, got.last_used_at) == (7, 1.75, late)
        later = late + timedelta(minutes=1)
        await storage.record_usage([KeyUsage("key-001", 1, later)])
        got = await storage.get_key("key-001")
        assert (got.usage_count, got.spent, got.last_used_at) == (8, 1.75, later)

    async def test_usage_of_unknown_keys_is_ignored(self, storage):
        await storage.create_key(make_key(1))
        await storage.record_usage([KeyUsage("key-404", 5, T0, 2.0),
                                    KeyUsage("key-001", 1, T0, 0.5)])
        await storage.record_usage([])
        assert await storage.count_keys() == 1
        assert await storage.get_key("key-404") is None
        got = await storage.get_key("key-001")
        assert (got.usage_count, got.spent) == (1, 0.5)

    async def test_concurrent_usage_sums_exactly(self, storage):
        await storage.create_key(make_key(1))
        await storage.create_key(make_key(2))
        tasks = 40

        async def flush(i: int) -> None:
            at = T0 + timedelta(seconds=i)
            await storage.record_usage([KeyUsage("key-002", 2, at, 0.5),
                                        KeyUsage("key-001", 1, at, 0.25)])

        await asyncio.gather(*(flush(i) for i in range(tasks)))
        one, two = await storage.get_key("key-001"), await storage.get_key("key-002")
        assert (one.usage_count, one.spent) == (tasks, tasks * 0.25)
        assert (two.usage_count, two.spent) == (2 * tasks, tasks * 0.5)
        assert one.last_used_at == two.last_used_at == T0 + timedelta(seconds=tasks - 1)

    # config history

    async def test_config_versions_count_from_one(self, storage):
        assert await storage.latest_config() is None
        configs = [{"strategy": {"mode": "single"}, "n": n} for n in range(3)]
        entries = [await storage.append_config(c, "update", actor="key-001") for c in configs]
        assert [e.version for e in entries] == [1, 2, 3]
        for entry, config in zip(entries, configs, strict=True):
            got = await storage.get_config(entry.version)
            assert got == entry
            assert got.config == config and got.actor == "key-001" and got.action == "update"
            assert got.created_at.utcoffset() == timedelta(0)
        assert await storage.latest_config() == entries[-1]
        assert await storage.get_config(4) is None

    async def test_a_rollback_records_where_it_came_from(self, storage):
        first = await storage.append_config({"v": 1}, "create")
        await storage.append_config({"v": 2}, "update")
        rollback = await storage.append_config(first.config, "rollback", actor="key-007",
                                               rolled_back_from=2)
        got = await storage.get_config(rollback.version)
        assert (got.version, got.action, got.actor, got.rolled_back_from, got.config) == \
            (3, "rollback", "key-007", 2, {"v": 1})
        assert (await storage.get_config(1)).rolled_back_from is None

    async def test_a_delete_entry_has_no_config(self, storage):
        await storage.append_config({"v": 1}, "create")
        deleted = await storage.append_config(None, "delete")
        latest = await storage.latest_config()
        assert latest == deleted
        assert (latest.version, latest.action, latest.config) == (2, "delete", None)

    async def test_history_pages_newest_first_with_the_total(self, storage):
        for n in range(7):
            await storage.append_config({"n": n}, "update")
        page, total = await storage.config_history(3, 0)
        assert total == 7 and [e.version for e in page] == [7, 6, 5]
        page, total = await storage.config_history(3, 6)
        assert total == 7 and [e.version for e in page] == [1]
        assert page[0].config == {"n": 0}
        assert await storage.config_history(3, 7) == ([], 7)

    async def test_concurrent_appends_get_distinct_versions(self, storage):
        entries = await asyncio.gather(*(storage.append_config({"n": n}, "update")
                                         for n in range(50)))
        assert sorted(e.version for e in entries) == list(range(1, 51))
        for entry in entries:
            assert (await storage.get_config(entry.version)).config == entry.config

    # request logs

    async def test_logs_read_back_newest_first(self, storage):
        rows = [make_row(1),
                make_row(3, prompt_tokens=7, completion_tokens=5, total_tokens=12, cost=0.0125,
                         attempts=2, stream=True, ttfb_ms=3.25, operation="embeddings"),
                make_row(2, status=502, stage="on_error", error_type="upstream_error",
                         error_message="provider answered 502", cost=None)]
        await storage.write_logs(rows)
        got, total = await storage.list_logs(LogFilter(), 10, 0)
        assert total == 3
        assert got == [stored(rows[1], got[0]), stored(rows[2], got[1]), stored(rows[0], got[2])]
        assert len({row.id for row in got}) == 3

    async def test_a_large_batch_is_stored_whole_and_in_order(self, storage):
        rows = [make_row(n, prompt_tokens=n, cost=n / 100, stream=n % 2 == 1)
                for n in range(1237)]  # more than two INSERTs' worth of rows, and a remainder
        await storage.write_logs(rows)
        got, total = await storage.list_logs(LogFilter(), 1300, 0)
        assert total == 1237
        assert got == [stored(row, back) for row, back in zip(reversed(rows), got, strict=True)]

    async def test_rows_at_the_same_time_list_the_last_written_first(self, storage):
        await storage.write_logs([make_row(1, request_id="a"), make_row(1, request_id="b")])
        await storage.write_logs([make_row(1, request_id="c")])
        got, _ = await storage.list_logs(LogFilter(), 10, 0)
        assert [row.request_id for row in got] == ["c", "b", "a"]

    @pytest.mark.parametrize("field", ["stage", "model", "provider", "key_id", "operation"])
    async def test_each_filter_field_selects_its_rows(self, storage, field):
        values = ["alpha", "beta", "gamma"]
        await storage.write_logs([make_row(n, **{field: values[n % 3]}) for n in range(9)])
        got, total = await storage.list_logs(LogFilter(**{field: "beta"}), 10, 0)
        assert total == 3
        assert [row.request_id for row in got] == ["req-7", "req-4", "req-1"]
        assert await storage.list_logs(LogFilter(**{field: "delta"}), 10, 0) == ([], 0)

    async def test_filters_combine(self, storage):
        await storage.write_logs([
            make_row(1, provider="openai", model="a"), make_row(2, provider="openai", model="b"),
            make_row(3, provider="anthropic", model="a")])
        got, total = await storage.list_logs(LogFilter(provider="openai", model="a"), 10, 0)
        assert total == 1 and got[0].request_id == "req-1"

    async def test_paging_keeps_the_total(self, storage):
        await storage.write_logs([make_row(n) for n in range(25)])
        pages = [await storage.list_logs(LogFilter(), 10, offset) for offset in (0, 10, 20, 30)]
        assert [total for _, total in pages] == [25, 25, 25, 25]
        assert [len(rows) for rows, _ in pages] == [10, 10, 5, 0]
        seen = [row.request_id for rows, _ in pages for row in rows]
        assert seen == [f"req-{n}" for n in range(24, -1, -1)]

    async def test_since_includes_and_before_excludes_its_time(self, storage):
        await storage.write_logs([make_row(n) for n in range(4)])
        t = [T0 + timedelta(seconds=n) for n in range(4)]
        got, total = await storage.list_logs(LogFilter(since=t[1], before=t[3]), 10, 0)
        assert total == 2 and [row.request_id for row in got] == ["req-2", "req-1"]
        got, _ = await storage.list_logs(LogFilter(since=t[1] + timedelta(microseconds=1)),
                                         10, 0)
        assert [row.request_id for row in got] == ["req-3", "req-2"]
        got, _ = await storage.list_logs(LogFilter(before=t[1] + timedelta(microseconds=1)),
                                         10, 0)
        assert [row.request_id for row in got] == ["req-1", "req-0"]

    async def test_stats_count_errors_tokens_cost_and_labels(self, storage):
        await storage.write_logs([
            make_row(1, provider="openai", model="gpt", total_tokens=10, cost=0.5),
            make_row(2, provider="openai", model="gpt", stage="on_error", status=500,
                     error_message="boom", cost=None),
            make_row(3, provider="openai", model="mini", total_tokens=4, cost=0.25),
            make_row(4, provider="", model="", error_message="stream cut", total_tokens=5,
                     cost=0.125),
            make_row(5, provider="anthropic", model="claude", stage="", total_tokens=20,
                     cost=1.0),
            make_row(6, provider="anthropic", model="claude", total_tokens=1)])
        stats = await storage.log_stats(LogFilter(), 10)
        assert (stats.total_entries, stats.error_entries, stats.total_tokens) == (6, 2, 40)
        assert stats.total_cost == 1.875
        assert stats.by_stage == {"after_request": 4, "on_error": 1, "unknown": 1}
        assert list(stats.by_provider.items()) == [("openai", 3), ("anthropic", 2),
                                                   ("unknown", 1)]
        assert stats.by_model == {"gpt": 2, "claude": 2, "mini": 1, "unknown": 1}
        assert list(stats.by_model)[:2] == ["claude", "gpt"]  # largest first; ties by name

        capped = await storage.log_stats(LogFilter(), 1)
        assert capped.by_provider == {"openai": 3}
        assert capped.by_stage == {"after_request": 4}
        assert capped.total_entries == 6

        openai = await storage.log_stats(LogFilter(provider="openai"), 10)
        assert (openai.total_entries, openai.error_entries, openai.total_tokens) == (3, 1, 14)
        assert openai.by_provider == {"openai": 3}

    async def test_stats_of_no_rows_are_zero(self, storage):
        stats = await storage.log_stats(LogFilter(model="none"), 10)
        assert (stats.total_entries, stats.error_entries, stats.total_tokens,
                stats.total_cost) == (0, 0, 0, 0.0)
        assert stats.by_stage == stats.by_provider == stats.by_model == {}

    async def test_delete_logs_says_how_many(self, storage):
        await storage.write_logs([make_row(n, provider="openai" if n % 2 else "groq")
                                  for n in range(10)])
        before = T0 + timedelta(seconds=6)
        assert await storage.delete_logs(LogFilter(provider="openai", before=before)) == 3
        assert await storage.delete_logs(LogFilter(provider="openai", before=before)) == 0
        rows, total = await storage.list_logs(LogFilter(), 20, 0)
        assert total == 7
        assert [r.request_id for r in rows] == ["req-9", "req-8", "req-7", "req-6", "req-4",
                                                "req-2", "req-0"]
        assert await storage.delete_logs(LogFilter()) == 7
        assert await storage.list_logs(LogFilter(), 20, 0) == ([], 0)

    async def test_writing_no_rows_is_harmless(self, storage):
        await storage.write_logs([])
        assert await storage.list_logs(LogFilter(), 10, 0) == ([], 0)

    async def test_times_in_any_zone_read_back_as_the_same_instant_in_utc(self, storage):
        india = timezone(timedelta(hours=5, minutes=30))
        pacific = timezone(timedelta(hours=-8))
        created = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=india)
        key = make_key(1, created_at=created, expires_at=datetime(2026, 1, 1, tzinfo=pacific))
        await storage.create_key(key)
        await storage.record_usage([KeyUsage(key.id, 1, datetime(2025, 7, 1, tzinfo=pacific))])
        got = await storage.get_key(key.id)
        assert got.created_at == created and got.expires_at == key.expires_at
        assert got.last_used_at == datetime(2025, 7, 1, 8, tzinfo=UTC)
        for value in (got.created_at, got.expires_at, got.last_used_at):
            assert value.utcoffset() == timedelta(0)

        at = datetime(2025, 1, 1, 12, 0, 0, 1, tzinfo=india)  # 06:30:00.000001 UTC
        await storage.write_logs([make_row(1, created_at=at)])
        rows, _ = await storage.list_logs(LogFilter(since=at.astimezone(pacific)), 10, 0)
        assert [r.created_at for r in rows] == [at]
        assert rows[0].created_at.utcoffset() == timedelta(0)
        rows, _ = await storage.list_logs(LogFilter(before=at.astimezone(pacific)), 10, 0)
        assert rows == []

    # lifecycle

    async def test_everything_survives_close_and_reopen(self, storage, open_storage):
        self.needs_shared_database()
        await storage.create_key(make_key(1))
        await storage.record_usage([KeyUsage("key-001", 2, T0, 0.5)])
        await storage.append_config({"v": 1}, "create")
        await storage.write_logs([make_row(n) for n in range(3)])
        await storage.close()

        again = await open_storage()
        assert (await again.get_key("key-001")).usage_count == 2
        assert (await again.latest_config()).config == {"v": 1}
        assert (await again.list_logs(LogFilter(), 10, 0))[1] == 3
        assert (await again.append_config({"v": 2}, "update")).version == 2

    async def test_instances_opening_a_new_database_at_once_all_succeed(self, open_storage):
        self.needs_shared_database()
        first, *others = await asyncio.gather(*(open_storage() for _ in range(4)))
        await first.create_key(make_key(1))
        for other in others:
            assert await other.get_key("key-001") == make_key(1)

    async def test_two_instances_writing_at_once_lose_nothing(self, storage, open_storage):
        self.needs_shared_database()
        other = await open_storage()
        await storage.create_key(make_key(1))
        rounds = 20

        async def work(instance: Storage, i: int) -> int:
            await instance.write_logs([make_row(i * 10 + n) for n in range(10)])
            await instance.record_usage([KeyUsage("key-001", 1, T0, 0.25)])
            return (await instance.append_config({"round": i}, "update")).version

        versions = await asyncio.gather(*(work(storage if i % 2 else other, i)
                                          for i in range(rounds)))
        assert sorted(versions) == list(range(1, rounds + 1))
        assert (await other.list_logs(LogFilter(), 1, 0))[1] == rounds * 10
        key = await storage.get_key("key-001")
        assert (key.usage_count, key.spent) == (rounds, rounds * 0.25)
        assert (await storage.config_history(1, 0))[1] == rounds
