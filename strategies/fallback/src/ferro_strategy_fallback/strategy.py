"""Walk the targets in order; each is tried per its retry policy (by the kernel's attempt
helper); move on while another target may help."""

from __future__ import annotations

from typing import Any

from ferro import Attempt, RequestContext, StrategyConfig, Target, try_in_order


class FallbackStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.targets = targets

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        return await try_in_order(ctx, ctx.eligible(self.targets), attempt)
