"""Route to the cheapest target that meets the quality floor; fall back to the next
cheapest. Prices and the targets serving a model do not change within a config, so each
(operation, model)'s order is worked out once and remembered (a bounded number)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cachetools import LRUCache
from ferro import (
    Attempt,
    InvalidRequestError,
    RequestContext,
    StrategyConfig,
    Target,
    no_target,
    try_in_order,
)

from ferro_strategy_cost_optimized.options import CostOptimizedOptions
from ferro_strategy_cost_optimized.ranking import Ranking, rank

#: How many (operation, model) orders are remembered.
REMEMBERED_ORDERS = 1024


class CostOptimizedStrategy:
    Options = CostOptimizedOptions

    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.options = config.options
        self.targets = targets
        self._orders: LRUCache[tuple[str, str], Ranking] = LRUCache(maxsize=REMEMBERED_ORDERS)

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        key = (ctx.operation.name, ctx.model)
        ranking = self._orders.get(key)
        if ranking is None:
            ranking = self._orders[key] = rank(ctx.eligible(self.targets), ctx.model,
                                               self.options)
        if not ranking:
            raise self._nothing_meets_the_floor(ctx)
        return await try_in_order(ctx, _noting_price(ctx, ranking), attempt)

    def _nothing_meets_the_floor(self, ctx: RequestContext) -> InvalidRequestError:
        if not ctx.eligible(self.targets):
            return no_target(ctx)
        return InvalidRequestError(
            f"no target meets the quality floor ({self.options.describe()}) for model "
            f"{ctx.model}", code="no_target_meets_quality_floor", param="model")


def _noting_price(ctx: RequestContext, ranking: Ranking) -> Iterator[Target]:
    """The ranked targets; each one's blended price goes to ``ctx.metadata["route_price"]``
    as it is tried, so it ends up naming the target that answered (or failed last)."""
    for target, price in ranking:
        ctx.metadata["route_price"] = price
        yield target
