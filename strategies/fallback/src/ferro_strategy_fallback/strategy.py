"""Walk the targets in order; each is tried per its retry policy (by the kernel's attempt
helper); move on while another target may help."""

from __future__ import annotations

import logging
from typing import Any

from ferro import (
    Attempt,
    GatewayError,
    ModelNotFoundError,
    RequestContext,
    StrategyConfig,
    Target,
    can_fall_back,
)

log = logging.getLogger("ferro.strategy.fallback")


class FallbackStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.targets = targets

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        candidates = ctx.eligible(self.targets)
        last: GatewayError | None = None
        for i, target in enumerate(candidates):
            try:
                return await attempt(target)
            except GatewayError as exc:
                if not can_fall_back(exc):
                    raise
                last = exc
                if i + 1 < len(candidates):
                    log.warning("provider %s failed, falling back to %s: %s", target.name,
                                candidates[i + 1].name, exc.message)
        if last is None:
            raise ModelNotFoundError(
                f"no target serves {ctx.operation.name} for model {ctx.model}", param="model")
        raise last
