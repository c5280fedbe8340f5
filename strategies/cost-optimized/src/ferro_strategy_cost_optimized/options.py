"""``strategy.options`` of the ``cost-optimized`` strategy: the quality floor a target must
meet to be routed to, checked when the config loads."""

from __future__ import annotations

import attrs
from attrs import validators as v
from ferro import TIERS


@attrs.define
class CostOptimizedOptions:
    #: The upstream models a target may be asked for (after its ``model_map``); empty: any.
    models: list[str] = attrs.Factory(list)
    #: The lowest quality tier a target's model may have (None: any, priced or not).
    min_tier: str | None = attrs.field(default=None, validator=v.optional(v.in_(TIERS)))
    #: Targets with no known price: ``last`` (after every priced one) or ``exclude``.
    unpriced: str = attrs.field(default="last", validator=v.in_(("last", "exclude")))

    def describe(self) -> str:
        """The floor in words, for the error that says nothing meets it."""
        parts = []
        if self.models:
            parts.append(f"models: {', '.join(self.models)}")
        if self.min_tier is not None:
            parts.append(f"min_tier: {self.min_tier}")
        if self.unpriced == "exclude":
            parts.append("a known price")
        return "; ".join(parts)
