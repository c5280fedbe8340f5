"""Storage: what the gateway keeps across restarts, behind one typed contract.

Three stores, each chosen on its own (config ``storage.<store>`` or the environment
variables below, which win), each a backend registered through ``register_storage``:

========================  ===============================================================
store                     environment
========================  ===============================================================
``keys`` (API keys)       ``API_KEY_STORE_BACKEND`` / ``API_KEY_STORE_DSN``
``config`` (history)      ``CONFIG_STORE_BACKEND`` / ``CONFIG_STORE_DSN``
``request_logs``          ``REQUEST_LOG_STORE_BACKEND`` / ``REQUEST_LOG_STORE_DSN``
========================  ===============================================================

A backend class is built as ``cls(dsn, options)`` and implements :class:`Storage`: every
store's methods, so that one database can hold all three. Stores with the same backend
and DSN share one instance. ``open()`` applies the backend's schema migrations (versioned,
idempotent, safe to run from several processes at once); ``close()`` releases it.

Times are timezone-aware UTC ``datetime`` values. Secrets never reach a store: a key is
kept as the SHA-256 of its secret (:attr:`KeyRecord.key_hash`) and a display form.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from ferro.config import Config, StoreConfig, build_options
from ferro.errors import ConfigError

__all__ = [
    "SCOPES",
    "STORES",
    "ConfigVersion",
    "KeyRecord",
    "KeyUsage",
    "LogFilter",
    "LogRow",
    "LogStats",
    "Storage",
    "Stores",
    "open_stores",
    "utcnow",
    "with_embedded_storage",
]

log = logging.getLogger("ferro.storage")

#: Key scopes: ``inference`` for ``/v1/*``, ``read_only`` for reading ``/admin``, ``admin``
#: for everything (it includes the other two).
SCOPES = ("admin", "read_only", "inference")

#: store name -> (backend variable, DSN variable)
STORES = {
    "keys": ("API_KEY_STORE_BACKEND", "API_KEY_STORE_DSN"),
    "config": ("CONFIG_STORE_BACKEND", "CONFIG_STORE_DSN"),
    "request_logs": ("REQUEST_LOG_STORE_BACKEND", "REQUEST_LOG_STORE_DSN"),
}

EMBEDDED_BACKEND = "sqlite"
EMBEDDED_FILE = "ferro.db"
EMBEDDED_DIR = "ferro-data"


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- records -----------------------------------------------------------------------------------


@attrs.define
class KeyRecord:
    """An API key as stored: never its secret."""

    id: str
    name: str
    #: SHA-256 of the secret, hex: the lookup key (the secret has 256 random bits, so an
    #: unsalted hash cannot be reversed by search).
    key_hash: str
    #: How the key is shown once created: its prefix, a few characters, ``...``, its last four.
    display: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_at: datetime | None = None
    #: Models the key may ask for (names as the caller sends them); empty: any.
    models: list[str] = attrs.Factory(list)
    #: Spend limit in US dollars over the key's life; None: none.
    budget: float | None = None
    #: Written only by :meth:`Storage.record_usage`, never by :meth:`Storage.update_key`.
    spent: float = 0.0
    usage_count: int = 0
    last_used_at: datetime | None = None

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (now or utcnow()) >= self.expires_at:
            return "expired"
        return "active"


@attrs.define
class KeyUsage:
    """Use of one key since the last flush: added to the stored counters."""

    key_id: str
    requests: int
    last_used_at: datetime
    cost: float = 0.0


@attrs.define
class ConfigVersion:
    """One entry of the config history. ``config`` is the config as applied (a JSON tree),
    or None for ``action == "delete"`` (back to the config the gateway started with)."""

    version: int
    config: dict[str, Any] | None
    created_at: datetime
    #: ``create``, ``update``, ``delete`` or ``rollback``.
    action: str
    #: The key id that made the change ("" when it came from elsewhere).
    actor: str = ""
    #: For a rollback: the version that was current when it was made.
    rolled_back_from: int | None = None


@attrs.define
class LogRow:
    """One completed exchange, as the request log keeps it."""

    created_at: datetime
    request_id: str
    trace_id: str
    key_id: str
    operation: str
    provider: str
    model: str
    status: int
    #: ``after_request`` for an answer, ``on_error`` for a failure (the Go version's stages).
    stage: str
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    stream: bool = False
    ttfb_ms: float | None = None
    error_type: str = ""
    error_message: str = ""
    #: Assigned by the store.
    id: int | None = None


@attrs.define
class LogFilter:
    """Which rows: every field set must match (``since``: created at or after; ``before``:
    strictly before)."""

    stage: str = ""
    model: str = ""
    provider: str = ""
    key_id: str = ""
    operation: str = ""
    since: datetime | None = None
    before: datetime | None = None


@attrs.define
class LogStats:
    """Aggregates over the rows a filter selects. ``by_*`` hold at most ``limit`` labels
    each, the largest counts first; an empty label is counted as ``"unknown"``."""

    total_entries: int
    error_entries: int
    total_tokens: int
    total_cost: float
    by_stage: dict[str, int]
    by_provider: dict[str, int]
    by_model: dict[str, int]


# --- the contract ----------------------------------------------------------------------------


@runtime_checkable
class Storage(Protocol):
    """A storage backend. Every method is safe to call from concurrent tasks and from
    several processes sharing the database."""

    async def open(self) -> None:
        """Connect and apply the schema migrations not yet applied."""

    async def close(self) -> None: ...

    # keys
    async def create_key(self, record: KeyRecord) -> None:
        """Store a new key. Raises ``ValueError`` if its id or hash is taken."""

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        """The key whose secret hashes to ``key_hash``, whatever its status."""

    async def list_keys(self) -> list[KeyRecord]:
        """Every key, oldest first."""

    async def update_key(self, record: KeyRecord) -> bool:
        """Replace the stored key's name, hash, display, scopes, dates, models and budget
        (not its usage). False when there is no such key."""

    async def delete_key(self, key_id: str) -> bool: ...

    async def count_keys(self) -> int:
        """Keys stored, whatever their status."""

    async def record_usage(self, usage: Sequence[KeyUsage]) -> None:
        """Add each entry to its key's ``usage_count`` and ``spent``, and move its
        ``last_used_at`` forward (never back). Unknown key ids are ignored."""

    # config history
    async def append_config(self, config: dict[str, Any] | None, action: str, *,
                            actor: str = "", rolled_back_from: int | None = None
                            ) -> ConfigVersion:
        """Add a history entry with the next version number (1 for the first), assigned
        atomically: concurrent writers never get the same one."""

    async def latest_config(self) -> ConfigVersion | None: ...

    async def get_config(self, version: int) -> ConfigVersion | None: ...

    async def config_history(self, limit: int, offset: int) -> tuple[list[ConfigVersion], int]:
        """Entries newest first, and how many there are."""

    # request logs
    async def write_logs(self, rows: Sequence[LogRow]) -> None:
        """Insert ``rows`` in one transaction."""

    async def list_logs(self, where: LogFilter, limit: int, offset: int
                        ) -> tuple[list[LogRow], int]:
        """Matching rows newest first (by ``created_at``, then ``id``), and how many match."""

    async def log_stats(self, where: LogFilter, limit: int) -> LogStats: ...

    async def delete_logs(self, where: LogFilter) -> int:
        """Delete matching rows; how many were deleted."""


@attrs.define
class Stores:
    """The open stores of an app (None: not configured)."""

    keys: Storage | None = None
    config: Storage | None = None
    request_logs: Storage | None = None
    opened: list[Storage] = attrs.Factory(list)

    async def close(self) -> None:
        for storage in reversed(self.opened):
            try:
                await storage.close()
            except Exception:
                log.exception("closing storage %r failed", storage)
        self.opened.clear()


# --- choosing and opening ----------------------------------------------------------------------


def with_embedded_storage(config: Config, data_dir: str | None = None,
                          env: Mapping[str, str] | None = None) -> Config:
    """``config`` with every store that neither it nor the environment sets kept in SQLite,
    in ``data_dir`` (else ``storage.data_dir``, ``FERRO_DATA_DIR`` or ``./ferro-data``):
    what ``ferrogw serve`` runs with when ``ferro-storage-sqlite`` is installed."""
    env = os.environ if env is None else env
    directory = data_dir or config.storage.data_dir or env.get("FERRO_DATA_DIR") or EMBEDDED_DIR
    path = os.path.join(directory, EMBEDDED_FILE)
    storage = config.storage
    for name, (backend_var, _) in STORES.items():
        store: StoreConfig = getattr(storage, name)
        if not store.backend and not env.get(backend_var):
            setattr(storage, name, attrs.evolve(store, backend=EMBEDDED_BACKEND, dsn=path))
    storage.data_dir = directory
    return config


def store_settings(config: Config, name: str, env: Mapping[str, str]) -> tuple[str, str]:
    """The (backend, DSN) of store ``name``: its environment variables', else the config's."""
    backend_var, dsn_var = STORES[name]
    store: StoreConfig = getattr(config.storage, name)
    backend = (env.get(backend_var) or store.backend).strip().lower()
    dsn = env.get(dsn_var) or store.dsn
    if backend == "postgresql":
        backend = "postgres"
    if backend == "memory":
        backend, dsn = "sqlite", ":memory:"
    if backend in ("", "none", "disabled"):
        return "", ""
    return backend, dsn


async def open_stores(config: Config, storage_classes: Mapping[str, type],
                      env: Mapping[str, str]) -> Stores:
    """Open the stores ``config`` and ``env`` choose. Raises ConfigError for a backend that
    is not installed or a DSN it refuses; a store that cannot be reached raises what its
    driver raises (the gateway does not start)."""
    stores = Stores()
    shared: dict[tuple[str, str], Storage] = {}
    try:
        for name in STORES:
            backend, dsn = store_settings(config, name, env)
            if not backend:
                continue
            storage = shared.get((backend, dsn))
            if storage is None:
                storage = _build(config, name, backend, dsn, storage_classes)
                if dsn != ":memory:":  # each in-memory store is its own database
                    shared[(backend, dsn)] = storage
                await storage.open()
                stores.opened.append(storage)
            setattr(stores, name, storage)
    except BaseException:
        await stores.close()
        raise
    return stores


def _build(config: Config, name: str, backend: str, dsn: str,
           storage_classes: Mapping[str, type]) -> Storage:
    cls = storage_classes.get(backend)
    if cls is None:
        installed = ", ".join(sorted(storage_classes)) or "none"
        hint = f"pip install ferro-storage-{backend}" if backend in ("sqlite", "postgres") \
            else "install the package that registers it"
        raise ConfigError(f"storage.{name}: unsupported storage backend {backend!r} "
                          f"(installed: {installed}; {hint})")
    store: StoreConfig = getattr(config.storage, name)
    options = build_options(cls, store.options, config.source, ("storage", name, "options"))
    if not dsn and backend != "sqlite":
        raise ConfigError(f"storage.{name}: {backend} dsn is required "
                          f"(set storage.{name}.dsn or {STORES[name][1]})")
    storage = cls(dsn, options)
    if not isinstance(storage, Storage):
        raise ConfigError(f"storage backend {backend!r} ({cls.__module__}.{cls.__qualname__}) "
                          f"does not implement ferro.Storage")
    return storage
