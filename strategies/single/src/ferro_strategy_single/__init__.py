"""The ``single`` strategy: every request goes to the first target that serves it."""

from __future__ import annotations

from typing import Any

from ferro import Attempt, RequestContext, StrategyConfig, Target, hookimpl, no_target


class SingleStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.targets = targets

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        candidates = ctx.eligible(self.targets)
        if not candidates:
            raise no_target(ctx)
        return await attempt(candidates[0])


@hookimpl
def register_strategies(register):
    register("single", SingleStrategy)
