"""Label values, made once per series and kept: what a request names is looked up in a dict,
and never turned into a new series past a bound."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["CACHE", "NONE", "OTHER", "Children"]

#: The provider and model of a request no provider handled.
NONE = "none"
#: The provider of an answer from the response cache.
CACHE = "cache"
#: The value a label takes once its metric has as many series as it may have.
OTHER = "other"

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Children(Generic[K, T]):
    """What ``make(key)`` gives (a metric's ``.labels(...)`` children), made once per key.

    At most ``limit`` keys get their own; past that, a new key is served what ``make`` gives
    for ``overflow(key)`` (its label values with the unbounded one replaced by
    :data:`OTHER`), so that no caller can grow the series without end."""

    __slots__ = ("_known", "limit", "make", "overflow")

    def __init__(self, make: Callable[[K], T], overflow: Callable[[K], K], limit: int) -> None:
        self.make = make
        self.overflow = overflow
        self.limit = limit
        self._known: dict[K, T] = {}

    def __call__(self, key: K) -> T:
        found = self._known.get(key)
        if found is None:
            found = self._add(key)
        return found

    def _add(self, key: K) -> T:
        if len(self._known) >= self.limit:
            key = self.overflow(key)
            found = self._known.get(key)
            if found is not None:
                return found
        found = self._known[key] = self.make(key)
        return found
