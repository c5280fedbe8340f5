"""Which targets meet the quality floor for a model, cheapest first."""

from __future__ import annotations

from collections.abc import Iterable

from ferro import TIERS, Price, Target

from ferro_strategy_cost_optimized.options import CostOptimizedOptions

#: Targets with their blended price per million tokens (None: unknown), in routing order.
Ranking = tuple[tuple[Target, float | None], ...]


def rank(targets: Iterable[Target], model: str, floor: CostOptimizedOptions) -> Ranking:
    """The targets that meet ``floor`` for ``model``, by blended price (equal prices keep
    config order), then, unless ``floor.unpriced`` excludes them, those with no known
    price, in config order."""
    priced: list[tuple[Target, float]] = []
    unpriced: list[tuple[Target, float | None]] = []
    for target in targets:
        price = target.price(model)
        if not meets(floor, target, model, price):
            continue
        blended = price.blended() if price is not None else None
        if blended is not None:
            priced.append((target, blended))
        elif floor.unpriced == "last":
            unpriced.append((target, None))
    priced.sort(key=lambda entry: entry[1])
    return (*priced, *unpriced)


def meets(floor: CostOptimizedOptions, target: Target, model: str,
          price: Price | None) -> bool:
    """Whether ``target`` asked for ``model`` meets the allow-list and tier of ``floor``
    (a model without a tier meets no ``min_tier``)."""
    if floor.models and target.upstream_model(model) not in floor.models:
        return False
    if floor.min_tier is None:
        return True
    return price is not None and price.tier_rank() >= TIERS.index(floor.min_tier)
