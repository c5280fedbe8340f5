"""Route each request by its experiment arm: an arm may pin a target, swap the model, or
both. The arm is reported to the client (``x-ferro-ab-arm``) and to the exchange
(``ab_arm``, ``ab_experiment`` in its metadata), so answers can be compared per arm."""

from __future__ import annotations

from typing import Any, ClassVar

from ferro import Attempt, RequestContext, StrategyConfig, Target, try_in_order

from ferro_strategy_ab_test.assignment import Assigner
from ferro_strategy_ab_test.options import Arm, Options

__all__ = ["ARM_HEADER", "ABTestStrategy"]

#: The reply header naming the arm a request was routed by.
ARM_HEADER = "x-ferro-ab-arm"


class ABTestStrategy:
    Options: ClassVar[type[Options]] = Options

    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        options: Options = config.options
        options.check(targets)
        self.targets = targets
        self.experiment = options.experiment
        self.fallback = options.fallback
        self.assigner = Assigner(options)
        by_name = {t.name: t for t in targets}
        self._pinned = {arm.name: by_name[arm.target] for arm in options.arms if arm.target}

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        arm = self.assigner.assign(ctx)
        ctx.reply_headers[ARM_HEADER] = arm.name
        ctx.metadata["ab_arm"] = arm.name
        ctx.metadata["ab_experiment"] = self.experiment
        if arm.model:
            ctx.request.body["model"] = arm.model
        return await try_in_order(ctx, self.candidates(ctx, arm), attempt)

    def candidates(self, ctx: RequestContext, arm: Arm) -> list[Target]:
        """The targets to try for ``arm``, in order: its own target (when it serves the
        request), then, with ``fallback``, the other targets that serve it. None at all
        makes :func:`ferro.try_in_order` answer ``model_not_found``. An arm without a
        target uses every target serving the request, in config order."""
        eligible = ctx.eligible(self.targets)
        pinned = self._pinned.get(arm.name)
        if pinned is None:
            return eligible
        first = [pinned] if pinned in eligible else []
        if not self.fallback:
            return first
        return first + [t for t in eligible if t is not pinned]
