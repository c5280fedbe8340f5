"""The config service: applying a config sent through the API, keeping its history, and
keeping every gateway process that shares the config store on the same version.

- At start-up (after the stores are open) the store's latest version, if it has one,
  replaces the config file's: a config set through the API survives a restart. It
  survives a SIGHUP too: the file re-read becomes the config a delete goes back to, and
  is served only when no config set through the API is in force.
- A change is parsed (a :class:`ferro.ConfigError` leaves the config in force serving),
  applied with :func:`ferro.reload` (requests in flight finish on the old config), then
  appended to the history with the caller's key id. Changes are made one at a time.
- A delete goes back to the config the process started with; a rollback re-applies a
  version's config (a delete entry's: the start-up config) as a new version.
- Every :data:`POLL_INTERVAL` seconds the store's latest version is read (one cheap
  query); a newer one, made by another process, is applied here too.

The history keeps each config as it was given (its JSON tree, ``${VAR}`` references
unexpanded), so a rollback re-applies exactly what was sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from ferro import (
    ENV,
    PIPELINE,
    STORES,
    Config,
    ConfigError,
    ConfigVersion,
    GatewayError,
    Storage,
    parse_config,
    reload,
    stop_task,
)

from ferro_admin.errors import NotFoundError, NotImplementedYetError

__all__ = ["CONFIG_SERVICE", "POLL_INTERVAL", "ConfigService", "config_service"]

log = logging.getLogger("ferro.admin.config")

#: Seconds between two looks at the store for a version another process made.
POLL_INTERVAL = 2.0


class ConfigStoreUnavailableError(GatewayError):
    def __init__(self) -> None:
        super().__init__("the config store could not be written; the config in force is "
                         "unchanged: retry shortly", status=503, type="server_error",
                         code="config_store_unavailable", retryable=True,
                         headers={"Retry-After": "1"})


class ConfigService:
    """The config changes of one app (see the module's doc)."""

    def __init__(self, app: web.Application, startup: Config, *,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.app = app
        self.startup = startup
        self.poll_interval = poll_interval
        #: The history version in force here (None: the start-up config, no version yet).
        self.version: int | None = None
        #: Whether the config in force was set through the API (else: the file's).
        self.from_api = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def store(self) -> Storage | None:
        return self.app[STORES].config

    def _required_store(self) -> Storage:
        store = self.store
        if store is None:
            raise NotImplementedYetError(
                "config changes need a config store: configure storage.config (or set "
                "CONFIG_STORE_BACKEND) and restart the gateway")
        return store

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        store = self.store
        if store is None:
            return
        latest = await store.latest_config()
        if latest is not None and latest.config is None:  # deleted: the file's config
            self.version = latest.version
        elif latest is not None:
            self._apply_entry(latest, "stored; it replaces the config file's")
        self._task = asyncio.create_task(self._follow(store), name="ferro-admin-config")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _follow(self, store: Storage) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                latest = await store.latest_config()
            except Exception as exc:
                log.warning("reading the latest config version failed: %s", exc)
                continue
            if latest is None or not self._newer(latest):
                continue
            async with self._lock:
                if self._newer(latest):
                    self._apply_entry(latest, "made by another gateway process")

    def _newer(self, entry: ConfigVersion) -> bool:
        return self.version is None or entry.version > self.version

    def _apply_entry(self, entry: ConfigVersion, why: str) -> None:
        """Serve history ``entry``'s config; one that cannot be built here is logged and
        skipped (the config in force keeps serving)."""
        self.version = entry.version
        try:
            self._apply(entry.config)
        except ConfigError as exc:
            log.error("config version %d (%s) cannot be applied here, keeping the config "
                      "in force: %s", entry.version, why, exc.message)
            return
        log.info("config version %d (%s, %s) applied", entry.version, entry.action, why)

    # --- changes ---------------------------------------------------------------------------

    def parse(self, tree: dict[str, Any]) -> Config:
        """A config from its JSON tree, checked as a config file is (ConfigError, 400)."""
        return parse_config(json.dumps(tree, indent=2), None, self.app[ENV])

    def _apply(self, tree: dict[str, Any] | None) -> None:
        reload(self.app, self.startup if tree is None else self.parse(tree))
        self.from_api = tree is not None

    def file_reloaded(self, config: Config) -> bool:
        """The config file was re-read as ``config``: a delete goes back to it from now on.
        True when a config set through the API is in force, and stays (else the file's
        is served, as without this plugin)."""
        self.startup = config
        if self.from_api:
            log.info("config file reloaded; config version %d, set through the API, stays "
                     "in force (DELETE /admin/config serves the file's)", self.version)
        return self.from_api

    async def change(self, tree: dict[str, Any] | None, action: str, actor: str, *,
                     rollback: bool = False) -> ConfigVersion:
        """Apply ``tree`` (None: the start-up config) and record it as ``action`` (for a
        ``rollback``, with the version that was current until then)."""
        store = self._required_store()
        async with self._lock:
            latest = await store.latest_config() if rollback else None
            previous = self.app[PIPELINE].gateway.config
            was_from_api = self.from_api
            self._apply(tree)
            try:
                entry = await store.append_config(
                    tree, action, actor=actor,
                    rolled_back_from=latest.version if latest is not None else None)
            except Exception as exc:
                log.error("recording a config change failed (%s); the previous config is "
                          "back in force", exc)
                # the file's config may have been re-read meanwhile: that one, then
                reload(self.app, previous if was_from_api else self.startup)
                self.from_api = was_from_api
                raise ConfigStoreUnavailableError() from None
            self.version = entry.version
        log.info("config version %d (%s by %s) applied", entry.version, action,
                 actor or "unknown")
        return entry

    async def rollback(self, version: int, actor: str) -> tuple[ConfigVersion, int]:
        """Re-apply version ``version``'s config as a new version; it and the history's
        size."""
        store = self._required_store()
        target = await store.get_config(version)
        if target is None:
            raise NotFoundError(f"no config version {version} (GET /admin/config/history "
                                f"lists them)")
        entry = await self.change(target.config, "rollback", actor, rollback=True)
        _, size = await store.config_history(1, 0)
        return entry, size

    async def history(self, limit: int, offset: int) -> tuple[list[ConfigVersion], int]:
        return await self._required_store().config_history(limit, offset)

CONFIG_SERVICE = web.AppKey("ferro_admin_config", ConfigService)


async def config_service(app: web.Application) -> AsyncIterator[None]:
    """The app's config service, started once the stores are open (a cleanup context)."""
    service = app[CONFIG_SERVICE]
    await service.start()
    yield
    await service.aclose()
