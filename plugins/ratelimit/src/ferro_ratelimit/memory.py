"""The ``memory`` backend: buckets in this process, a few dict operations a check.

The buckets are an LRU of at most ``max_buckets``, so a flood of distinct client addresses
cannot grow memory without bound: past it, the least recently used bucket is forgotten,
which is the same as refilling it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cachetools import LRUCache

from ferro_ratelimit.buckets import Check, Verdict

__all__ = ["MemoryBackend"]


class MemoryBackend:
    def __init__(self, max_buckets: int, clock: Callable[[], float] = time.monotonic) -> None:
        #: bucket key -> (level, when it was that level)
        self.buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=max_buckets)
        self._clock = clock

    async def take(self, checks: Sequence[Check]) -> Verdict:
        return self._apply(checks, check=True)

    def debit(self, checks: Sequence[Check]) -> None:
        self._apply(checks, check=False)

    async def aclose(self) -> None:
        pass

    def _apply(self, checks: Sequence[Check], check: bool) -> Verdict:
        now = self._clock()
        buckets = self.buckets
        levels = []
        for key, rate, *_ in checks:
            state = buckets.get(key)
            levels.append(rate.capacity if state is None else rate.refill(state[0], now - state[1]))
        if check and any(level < 1 for level in levels):
            return False, levels
        for i, (key, _rate, cost, *_) in enumerate(checks):
            levels[i] -= cost
            buckets[key] = (levels[i], now)
        return True, levels
