"""The ``single`` strategy: every request goes to the first target, once."""

from __future__ import annotations

from typing import TypeVar

from ferro import ChatRequest, ModelNotFoundError, StrategyConfig, Target, hookimpl

T = TypeVar("T")


class SingleStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.target = targets[0]

    async def route(self, request: ChatRequest, call) -> T:
        target = self.target
        if not target.provider.supports_model(request.model):
            raise ModelNotFoundError(
                f"provider {target.name} does not support model {request.model}", param="model")
        return await call(target)


@hookimpl
def register_strategies(register):
    register("single", SingleStrategy)
