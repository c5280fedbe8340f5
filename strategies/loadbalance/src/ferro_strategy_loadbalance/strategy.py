"""Spread requests over the targets by weight; fail over to the others on a failure another
target may not share.

The order of the targets is drawn lazily, one weighted pick at a time among those not yet
tried, so the common case (the first pick answers) costs one O(n) pass and no sort. The
kernel's :func:`ferro.try_in_order` walks that order, so falling over, and refusing to for
a client's own mistake, work exactly as in every other strategy. Requests run on one
asyncio thread: there is no shared state to lock, only the random source.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from ferro import Attempt, OptionError, RequestContext, StrategyConfig, Target, try_in_order

__all__ = ["LoadBalanceStrategy", "weighted_order"]


class LoadBalanceStrategy:
    """Weighted random choice among the eligible targets. ``rng`` replaces the module's
    random source (a seeded :class:`random.Random` makes a test repeatable)."""

    def __init__(self, config: StrategyConfig, targets: list[Target], *,
                 rng: random.Random | None = None) -> None:
        if not any(t.weight > 0 for t in targets):
            raise OptionError(("targets",), "loadbalance needs at least one target with a "
                              "positive weight: every weight is 0 (a weight of 0 marks a "
                              "standby target, used only when the weighted ones failed)")
        self.targets = targets
        self._random: Callable[[], float] = (rng or random).random

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        order = weighted_order(ctx.eligible(self.targets), self._random)
        return await try_in_order(ctx, order, attempt)


def weighted_order(targets: list[Target], draw: Callable[[], float]) -> Iterator[Target]:
    """``targets`` in a weighted random order without replacement: each next one drawn
    from those not yet given, in proportion to its weight (``draw`` gives a float in
    [0, 1)). Zero-weight targets are standbys: they come last, in their given order."""
    pool = [t for t in targets if t.weight > 0]
    while pool:
        yield pool.pop(_pick(pool, draw()))
    yield from (t for t in targets if t.weight <= 0)


def _pick(pool: list[Target], u: float) -> int:
    """The index in ``pool`` whose share of the total weight covers ``u`` (in [0, 1))."""
    point = u * sum(t.weight for t in pool)
    for i, target in enumerate(pool):
        point -= target.weight
        if point < 0:
            return i
    return len(pool) - 1  # u * total rounded up to the total itself
