"""An exact-match response cache in Redis, shared by every gateway process that points at
the same server and prefix.

An answer is one Redis string (``<prefix><key>``) expiring ``ttl`` after it was stored. A
sorted set (``<prefix>index``, scored by store time) bounds the count: storing runs one Lua
script that sets the entry, indexes it, drops index rows of expired entries, and deletes
the oldest entries past ``max_entries``, atomically. A lookup is one ``GET``.

Redis being slow or down never fails a request: each call has a short timeout, and a
failed lookup is a miss, a failed store is skipped (logged at most every 30 seconds).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import redis.asyncio as aioredis
from ferro import CacheEntry, CacheOptions, Duration, ResponseCache
from redis.exceptions import RedisError

log = logging.getLogger("ferro.cache.redis")

#: KEYS: the entry, the index. ARGV: the entry's bytes, ttl (ms), now (ms), max entries.
_STORE = """
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local over = math.min(redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4]), 1000)
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('DEL', unpack(oldest))
  redis.call('ZREM', KEYS[2], unpack(oldest))
end
redis.call('PEXPIRE', KEYS[2], ttl)
return over
"""

#: How often an unavailable Redis is logged.
_WARN_EVERY = 30.0


def _positive(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive (got {value})")


@attrs.define
class RedisOptions(CacheOptions):
    url: str = "redis://127.0.0.1:6379/0"
    #: Every key this cache writes starts with it: gateways sharing a prefix share answers.
    prefix: str = "ferro:cache:"
    max_entries: int = attrs.field(default=10_000, validator=_positive)
    #: The longest one Redis call may take before it counts as a miss.
    timeout: Duration = attrs.field(default=Duration(0.25), validator=_positive)


class RedisCache(ResponseCache):
    Options = RedisOptions

    def __init__(self, options: RedisOptions, ttl: float, *, client: Any = None) -> None:
        super().__init__(options, ttl)
        self.prefix = options.prefix
        self._index = f"{options.prefix}index"
        self._redis = client or aioredis.Redis.from_url(
            options.url, socket_timeout=options.timeout,
            socket_connect_timeout=options.timeout)
        self._store = self._redis.register_script(_STORE)
        self._warned_at = -_WARN_EVERY

    async def get(self, key: str) -> CacheEntry | None:
        try:
            data = await self._redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return None
        return CacheEntry.from_bytes(data) if data else None

    async def store(self, key: str, entry: CacheEntry) -> None:
        ttl_ms = int(self.ttl * 1000)
        if ttl_ms <= 0:
            return
        try:
            await self._store(keys=[self.prefix + key, self._index],
                              args=[entry.to_bytes(), ttl_ms, int(time.time() * 1000),
                                    self.options.max_entries])
        except (RedisError, OSError) as exc:
            self._unavailable(exc)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("redis cache unavailable, answering without it: %s", exc)
