"""The ``ab-test`` options, as written under ``strategy.options``.

The kernel structures them into :class:`Options` (and locates a wrong type in the file);
:meth:`Options.check` adds the rules that span arms or need the targets, each raised as an
:class:`~ferro.OptionError` naming the key at fault.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
from ferro import OptionError, Target, target_named

__all__ = ["STICKY", "Arm", "Options"]

#: What keeps a caller in one arm: their API key's id (else the request's ``user``), the
#: request's ``user``, or nothing (each request drawn at random).
STICKY = ("key", "user", "none")

_AT = ("strategy", "options")


@attrs.define
class Arm:
    """One variant of the experiment: its share of callers, and where their requests go."""

    name: str
    percent: float
    #: The target its requests go to (none: the targets serving the request, in order).
    target: str | None = None
    #: The model its requests ask for, in place of the one the request names.
    model: str | None = None


@attrs.define
class Options:
    #: The experiment's name; part of the sticky hash, so renaming it reshuffles callers.
    experiment: str = "ab"
    arms: list[Arm] = attrs.Factory(list)
    sticky: str = "key"
    #: Whether an arm's requests may go to other targets when its own target fails.
    fallback: bool = False

    def check(self, targets: Sequence[Target]) -> None:
        """Raise an :class:`OptionError` for the first rule these options break."""
        if self.sticky not in STICKY:
            raise OptionError((*_AT, "sticky"), f"must be one of {', '.join(STICKY)} "
                              f"(got {self.sticky!r})")
        if len(self.arms) < 2:
            raise OptionError((*_AT, "arms"), "an experiment needs at least two arms "
                              f"(got {len(self.arms)})")
        seen: set[str] = set()
        for i, arm in enumerate(self.arms):
            _check_arm(arm, (*_AT, "arms", i), seen, targets)
            seen.add(arm.name)
        total = sum(arm.percent for arm in self.arms)
        if not math.isclose(total, 100, abs_tol=1e-6):
            raise OptionError((*_AT, "arms"),
                              f"the arms' percents must add up to 100 (they add up to {total:g})")


def _check_arm(arm: Arm, at: tuple[object, ...], seen: set[str],
               targets: Sequence[Target]) -> None:
    if not arm.name.strip():
        raise OptionError((*at, "name"), "an arm needs a name")
    if arm.name in seen:
        raise OptionError((*at, "name"), f"arm name {arm.name!r} is used twice")
    if arm.percent < 0:
        raise OptionError((*at, "percent"), f"must not be negative (got {arm.percent:g})")
    if arm.target is not None:
        target_named(arm.target, targets, (*at, "target"))
    if not arm.target and not arm.model:
        raise OptionError(at, f"arm {arm.name!r} needs a target, a model, or both")
