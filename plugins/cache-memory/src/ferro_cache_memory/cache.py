"""An exact-match response cache in this process: least recently used entries go first
once ``max_entries`` are kept, and every entry expires ``ttl`` seconds after it was stored."""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
from cachetools import TTLCache
from ferro import CacheEntry, CacheOptions, ResponseCache


def _positive(_instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1 (got {value})")


@attrs.define
class MemoryOptions(CacheOptions):
    max_entries: int = attrs.field(default=1000, validator=_positive)


class MemoryCache(ResponseCache):
    Options = MemoryOptions

    def __init__(self, options: MemoryOptions, ttl: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(options, ttl)
        self._entries: TTLCache[str, CacheEntry] = TTLCache(options.max_entries, self.ttl,
                                                             timer=clock)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    async def store(self, key: str, entry: CacheEntry) -> None:
        if self.ttl > 0:
            self._entries[key] = entry
