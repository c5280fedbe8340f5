"""The ``single`` strategy: every request goes to the first target that serves it."""

from __future__ import annotations

from typing import Any

from ferro import Attempt, ModelNotFoundError, RequestContext, StrategyConfig, Target, hookimpl


class SingleStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.targets = targets

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        candidates = ctx.eligible(self.targets)
        if not candidates:
            raise ModelNotFoundError(
                f"no target serves {ctx.operation.name} for model {ctx.model}", param="model")
        return await attempt(candidates[0])


@hookimpl
def register_strategies(register):
    register("single", SingleStrategy)
