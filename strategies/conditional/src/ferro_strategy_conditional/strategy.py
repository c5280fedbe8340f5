"""Route each request by the first rule it matches: the model, the prompt text, a header,
the end user or the calling key decide the target (and, optionally, the model asked for).

The rules are compiled when the config is built (:mod:`ferro_strategy_conditional.rules`);
per request, they are tried in order with plain function calls, and the prompt text is read
only if a rule that looks at it is reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
from ferro import (
    Attempt,
    RequestContext,
    StrategyConfig,
    Target,
    no_target,
    target_named,
    try_in_order,
)

from ferro_strategy_conditional.prompt import PromptText
from ferro_strategy_conditional.rules import compile_rules

__all__ = ["ConditionalOptions", "ConditionalStrategy"]


@attrs.define
class ConditionalOptions:
    """``strategy.options`` of the conditional mode."""

    #: The target for requests no rule sends anywhere (empty: the first target).
    default: str = ""
    #: Whether a failed target hands over to the other targets serving the request.
    fallback: bool = False


class ConditionalStrategy:
    Options: ClassVar[type[ConditionalOptions]] = ConditionalOptions

    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None:
        options = config.options
        self.targets = targets
        self.rules = compile_rules(config.conditions, targets)
        self.default = (target_named(options.default, targets, ("strategy", "options", "default"))
                        if options.default else targets[0])
        self.fallback = options.fallback

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        target = self._choose(ctx)
        if not self.fallback:
            return await attempt(target)
        return await try_in_order(ctx, self._then_the_others(ctx, target), attempt)

    def _choose(self, ctx: RequestContext) -> Target:
        """The target of the first matching rule whose target serves the request (its model
        set on the request when the rule names one), else the default target, else the first
        target that serves the request. Records which in ``ctx.metadata["route_rule"]``."""
        prompt = PromptText(ctx.request)
        operation, model = ctx.operation, ctx.model
        for rule in self.rules:
            if rule.matches(ctx, prompt) and rule.target.serves(operation, rule.model or model):
                if rule.model:
                    ctx.request.body["model"] = rule.model
                ctx.metadata["route_rule"] = rule.index
                return rule.target
        ctx.metadata["route_rule"] = "default"
        if self.default.serves(operation, model):
            return self.default
        eligible = ctx.eligible(self.targets)
        if not eligible:
            raise no_target(ctx)
        return eligible[0]

    def _then_the_others(self, ctx: RequestContext, chosen: Target) -> Iterator[Target]:
        """``chosen``, then the other targets serving the request (its model as the rule
        left it), in config order."""
        yield chosen
        for target in ctx.eligible(self.targets):
            if target is not chosen:
                yield target
