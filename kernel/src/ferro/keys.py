"""Stored API keys: how they are made, checked and counted.

A secret is ``fgw_`` and 43 URL-safe characters: 256 random bits. It is shown once, when
created or rotated; the store keeps its SHA-256 (an unsalted hash is enough for a secret
that cannot be guessed) and a display form. A presented secret is hashed and looked up by
that hash, so no comparison time depends on the secret.

:class:`KeyRing` is what the gateway checks keys with. Lookups are cached for ``ttl``
(default 1 s, positive and negative alike, a bounded few), so a busy key costs one hash
and a dict lookup per request; a change made in this process (rotate, revoke, update,
delete) drops the cached entry at once, and a change made by another process is seen
within ``ttl``. Use (count, last use, cost) is added up in memory and written in one batch
per ``flush_interval``, off the request path, and once more at shutdown.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import cachetools

from ferro.errors import AuthenticationError, GatewayError, PermissionDeniedError
from ferro.storage import SCOPES, KeyRecord, KeyUsage, Storage, utcnow
from ferro.tasks import stop_task
from ferro.types import Exchange, Identity

__all__ = ["PREFIX", "BudgetExceededError", "KeyRing", "KeyStoreUnavailableError",
           "check_scopes", "display_of", "hash_secret", "new_secret", "scopes_allow"]

log = logging.getLogger("ferro.keys")

PREFIX = "fgw_"
_CACHED = 10_000
#: Seconds a key already seen keeps working while the store cannot be reached.
STALE_FOR = 60.0
#: Seconds between two warnings that the store cannot be reached.
WARN_EVERY = 30.0


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # bytes that are not UTF-8 reach us as surrogates: kept, they hash to no key
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def display_of(secret: str) -> str:
    return f"{secret[:8]}...{secret[-4:]}"


def scopes_allow(scopes: Iterable[str], needed: str) -> bool:
    """Whether ``scopes`` grant ``needed``: ``admin`` grants everything, ``read_only`` is
    granted by itself and ``admin``, ``inference`` by itself and ``admin``."""
    held = scopes if isinstance(scopes, frozenset | set) else set(scopes)
    return "admin" in held or needed in held


class BudgetExceededError(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=429, type="insufficient_quota",
                         code="budget_exceeded", retryable=False)


class KeyStoreUnavailableError(GatewayError):
    def __init__(self) -> None:
        super().__init__("the API key store cannot be reached; retry shortly", status=503,
                         type="server_error", code="key_store_unavailable", retryable=True,
                         headers={"Retry-After": "1"})


class KeyRing:
    """The stored keys of one app (see the module's doc)."""

    def __init__(self, storage: Storage, *, ttl: float = 1.0,
                 flush_interval: float = 1.0) -> None:
        self.storage = storage
        self.ttl = ttl
        self.flush_interval = flush_interval
        self._cache: cachetools.TTLCache[str, KeyRecord | None] = cachetools.TTLCache(
            _CACHED, ttl, timer=time.monotonic)
        #: The last record each secret was found to have, served while the store is down.
        self._known: cachetools.TTLCache[str, KeyRecord] = cachetools.TTLCache(
            _CACHED, STALE_FOR, timer=time.monotonic)
        self._warned_at = -WARN_EVERY
        self._pending: dict[str, KeyUsage] = {}
        self._count = 0
        self._counted = 0.0
        self._task: asyncio.Task[None] | None = None

    # --- life ------------------------------------------------------------------------------

    async def start(self, env: Mapping[str, str]) -> None:
        """Create the bootstrap keys the environment names, while no key exists
        (``ADMIN_BOOTSTRAP_KEY``: admin, ``ADMIN_BOOTSTRAP_READ_ONLY_KEY``: read_only;
        ``ADMIN_BOOTSTRAP_ENABLED=false`` turns this off), then start the usage writer."""
        self._count = await self.storage.count_keys()
        if self._count == 0 and env.get("ADMIN_BOOTSTRAP_ENABLED", "true").lower() \
                not in ("false", "0", "no", "off"):
            for var, scope in (("ADMIN_BOOTSTRAP_KEY", "admin"),
                               ("ADMIN_BOOTSTRAP_READ_ONLY_KEY", "read_only")):
                secret = env.get(var, "").strip()
                if secret:
                    await self._bootstrap(secret, scope, var)
            self._count = await self.storage.count_keys()
        self._counted = time.monotonic()
        self._task = asyncio.create_task(self._write_usage(), name="ferro-key-usage")

    async def _bootstrap(self, secret: str, scope: str, var: str) -> None:
        if len(secret) < 16:
            log.error("%s is shorter than 16 characters: no bootstrap key created", var)
            return
        record = _record(f"bootstrap ({var})", secret, [scope])
        try:
            await self.storage.create_key(record)
        except ValueError:  # another process made it first
            return
        log.info("created the bootstrap %s key %s from %s", scope, record.id, var)

    async def aclose(self) -> None:
        """Stop the usage writer and write what it had not."""
        await stop_task(self._task)
        self._task = None
        await self.flush()

    # --- checking --------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        """Whether any key is stored (as last counted, about a second ago at most)."""
        return self._count > 0

    async def identify(self, secret: str) -> Identity | None:
        """The caller ``secret`` belongs to, or None when it is no stored key. Raises
        AuthenticationError for a revoked or expired key."""
        key_hash = hash_secret(secret)
        try:
            record = self._cache[key_hash]
        except KeyError:
            try:
                record = await self.storage.find_key(key_hash)
                await self._recount()
            except Exception as exc:
                record = self._known.get(key_hash)
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY:
                    self._warned_at = now
                    log.error("API key lookup failed (keys seen in the last %gs keep "
                              "working): %s", STALE_FOR, exc)
                if record is None:
                    raise KeyStoreUnavailableError() from None
            else:
                if record is not None:
                    self._known[key_hash] = record
            self._cache[key_hash] = record
        if record is None:
            return None
        status = record.status()
        if status != "active":
            raise AuthenticationError(f"API key {record.id} is {status}",
                                      code="invalid_api_key")
        return Identity(key_id=record.id, name=record.name, scopes=frozenset(record.scopes),
                        attributes={"models": frozenset(record.models),
                                    "budget": record.budget, "spent": record.spent})

    async def _recount(self) -> None:
        """Count the stored keys again, at most once per ``ttl``."""
        now = time.monotonic()
        if now - self._counted >= self.ttl:
            self._counted = now
            self._count = await self.storage.count_keys()

    def admit(self, identity: Identity, model: str) -> None:
        """Refuse an inference request its key may not make: a key without the
        ``inference`` scope (403), a model outside the key's list (403), a spent budget
        (429 ``budget_exceeded``)."""
        if not scopes_allow(identity.scopes, "inference"):
            raise PermissionDeniedError(
                f"API key {identity.key_id} has no inference scope (its scopes: "
                f"{', '.join(sorted(identity.scopes)) or 'none'})", code="insufficient_scope")
        models = identity.attributes.get("models")
        if models and model not in models:
            raise PermissionDeniedError(
                f"API key {identity.key_id} may not use model {model!r} (allowed: "
                f"{', '.join(sorted(models))})", code="model_not_allowed", param="model")
        budget = identity.attributes.get("budget")
        if budget is not None:
            pending = self._pending.get(identity.key_id)
            spent = identity.attributes.get("spent", 0.0) + (pending.cost if pending else 0.0)
            if spent >= budget:
                raise BudgetExceededError(
                    f"API key {identity.key_id} has spent its budget (${spent:.4f} of "
                    f"${budget:.4f}); raise its budget or use another key")

    # --- use -------------------------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        """Count ``exchange`` against its key (an ``exchange_completed`` listener)."""
        identity = exchange.identity
        if identity is None or identity.key_id.startswith("cfg-"):
            return
        now = utcnow()
        usage = self._pending.get(identity.key_id)
        if usage is None:
            usage = self._pending[identity.key_id] = KeyUsage(identity.key_id, 0, now)
        usage.requests += 1
        usage.last_used_at = now
        usage.cost += exchange.cost or 0.0

    async def flush(self) -> None:
        """Write the use counted since the last flush (kept for the next one on failure)."""
        if not self._pending:
            return
        batch, self._pending = list(self._pending.values()), {}
        try:
            await self.storage.record_usage(batch)
            self._counted_in_cache(batch)
        except Exception:
            log.exception("writing key usage failed; it is kept for the next flush")
            for usage in batch:
                later = self._pending.get(usage.key_id)
                if later is not None:
                    usage.requests += later.requests
                    usage.cost += later.cost
                    usage.last_used_at = max(usage.last_used_at, later.last_used_at)
                self._pending[usage.key_id] = usage

    def _counted_in_cache(self, batch: list[KeyUsage]) -> None:
        """Add written use to the cached records, so a budget spent stays spent."""
        written = {usage.key_id: usage for usage in batch}
        for record in self._cache.values():
            usage = written.get(record.id) if record is not None else None
            if usage is not None and record is not None:
                record.spent += usage.cost
                record.usage_count += usage.requests

    async def _write_usage(self) -> None:
        """Every ``flush_interval``: write the use counted, and count the keys again (so a
        key created by another process starts being required here too)."""
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()
            try:
                await self._recount()
            except Exception as exc:
                log.warning("counting API keys failed: %s", exc)

    def _forget(self, key_hash: str) -> None:
        self._cache.pop(key_hash, None)
        self._known.pop(key_hash, None)

    # --- managing --------------------------------------------------------------------------

    async def create(self, name: str, scopes: Iterable[str], *,
                     expires_at: datetime | None = None, models: Iterable[str] = (),
                     budget: float | None = None) -> tuple[KeyRecord, str]:
        """A new key and its secret (the only time the secret is seen)."""
        secret = new_secret()
        record = _record(name, secret, check_scopes(scopes), expires_at=expires_at,
                         models=list(models), budget=budget)
        await self.storage.create_key(record)
        self._count += 1
        self._forget(record.key_hash)
        return record, secret

    async def rotate(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """A new secret for key ``key_id``; the old one stops working at once here (and
        within ``ttl`` in other processes)."""
        record = await self.storage.get_key(key_id)
        if record is None:
            return None
        old_hash, secret = record.key_hash, new_secret()
        record.key_hash, record.display = hash_secret(secret), display_of(secret)
        record.rotated_at = utcnow()
        if not await self.storage.update_key(record):
            return None
        self._forget(old_hash)
        return record, secret

    async def update(self, record: KeyRecord) -> bool:
        record.scopes = check_scopes(record.scopes)
        self._forget(record.key_hash)
        done = await self.storage.update_key(record)
        self._forget(record.key_hash)
        return done

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.storage.get_key(key_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record.revoked_at = utcnow()
            await self.update(record)
        return record

    async def delete(self, key_id: str) -> bool:
        record = await self.storage.get_key(key_id)
        if record is None or not await self.storage.delete_key(key_id):
            return False
        self._forget(record.key_hash)
        self._count = max(0, self._count - 1)
        return True


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """``scopes`` in a fixed order, each one known (ValueError naming the unknown ones)."""
    given = list(dict.fromkeys(scopes))
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not given:
        raise ValueError(f"a key needs at least one scope (known: {', '.join(SCOPES)})")
    return [s for s in SCOPES if s in given]


def _record(name: str, secret: str, scopes: list[str], **fields: Any) -> KeyRecord:
    return KeyRecord(id=str(uuid.uuid4()), name=name, key_hash=hash_secret(secret),
                     display=display_of(secret), scopes=scopes, created_at=utcnow(), **fields)
