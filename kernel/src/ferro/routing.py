"""What routing strategies share: trying candidates in order until one answers.

A strategy decides the order; :func:`try_in_order` walks it. Each candidate is tried
through the kernel's ``attempt`` (breaker, retries, timeouts); the walk moves on while the
failure is one another target may not share (:func:`ferro.can_fall_back`), and raises the
last failure when every candidate failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from ferro.config import OptionError
from ferro.errors import GatewayError, ModelNotFoundError, can_fall_back
from ferro.types import Attempt, RequestContext, Target

__all__ = ["no_target", "target_named", "try_in_order"]

log = logging.getLogger("ferro.routing")


async def try_in_order(ctx: RequestContext, candidates: Iterable[Target],
                       attempt: Attempt[Any]) -> Any:
    """The first answer among ``candidates``, tried in their order (an iterable, so a
    strategy may choose the next candidate lazily, after seeing the last one fail)."""
    last: GatewayError | None = None
    previous: Target | None = None
    for target in candidates:
        if last is not None and previous is not None:
            log.warning("provider %s failed, falling back to %s: %s", previous.name,
                        target.name, last.message)
        try:
            return await attempt(target)
        except GatewayError as exc:
            if not can_fall_back(exc):
                raise
            last, previous = exc, target
    if last is None:
        raise no_target(ctx)
    raise last


def no_target(ctx: RequestContext) -> ModelNotFoundError:
    """The error for a request no target serves."""
    return ModelNotFoundError(
        f"no target serves {ctx.operation.name} for model {ctx.model}", param="model")


def target_named(name: str, targets: Sequence[Target], at: tuple[Any, ...]) -> Target:
    """The target called ``name`` (its ``virtual_key``), for a strategy's own config (a rule,
    an arm, a default), or an :class:`~ferro.OptionError` at config path ``at``."""
    for target in targets:
        if target.name == name:
            return target
    names = ", ".join(t.name for t in targets)
    if not name:
        raise OptionError(at, f"name the target to route to (one of: {names})")
    raise OptionError(at, f"{name!r} names no target (the targets are: {names})")
