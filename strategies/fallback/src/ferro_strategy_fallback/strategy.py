"""Walk the targets in order; retry each per its policy; move on when another may help."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from ferro import (
    ChatRequest,
    CircuitOpenError,
    GatewayError,
    ModelNotFoundError,
    StrategyConfig,
    Target,
    backoff_delay,
    can_fall_back,
)

T = TypeVar("T")

log = logging.getLogger("ferro.strategy.fallback")


class FallbackStrategy:
    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        self.targets = targets

    async def route(self, request: ChatRequest, call) -> T:
        last: GatewayError | None = None
        for target in self.targets:
            if not target.provider.supports_model(request.model):
                continue
            for attempt in range(1, target.attempts + 1):
                try:
                    return await call(target)
                except GatewayError as exc:
                    if not can_fall_back(exc):
                        raise
                    last = exc
                    if not exc.retryable or isinstance(exc, CircuitOpenError):
                        break  # another attempt here cannot help; try the next target
                    if attempt < target.attempts:
                        log.info("retrying provider %s (attempt %d): %s", target.name,
                                 attempt + 1, exc.message)
                        await asyncio.sleep(backoff_delay(attempt, target.backoff,
                                                          target.max_backoff))
            if last is not None:
                log.warning("provider %s failed, falling back: %s", target.name, last.message)
        if last is None:
            raise ModelNotFoundError(f"no provider supports model: {request.model}",
                                     param="model")
        raise last
