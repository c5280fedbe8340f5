"""Which arm a request belongs to.

A caller with a sticky id always lands in the same arm: the id, salted with the
experiment's name, is hashed (blake2b, the same on every process and every restart, which
Python's ``hash()`` is not) to a point in [0, 100), and the arms own consecutive ranges
of that interval by their percents. A request without one is drawn at random.
"""

from __future__ import annotations

import hashlib
import random

from ferro import RequestContext

from ferro_strategy_ab_test.options import Arm, Options

__all__ = ["Assigner", "point_of"]


def point_of(experiment: str, sticky_id: str) -> float:
    """The caller's stable point in [0, 100) in ``experiment``."""
    digest = hashlib.blake2b(f"{experiment}\0{sticky_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100 / 2**64


class Assigner:
    """Maps a request to an arm, per the options' ``sticky`` rule."""

    def __init__(self, options: Options) -> None:
        self.experiment = options.experiment
        self.sticky = options.sticky
        self._bounds: list[tuple[float, Arm]] = []
        upper = 0.0
        for arm in options.arms:
            upper += arm.percent
            self._bounds.append((upper, arm))
        #: Where a point rounded up to the very end of the range lands.
        self._last = next(arm for arm in reversed(options.arms) if arm.percent > 0)

    def sticky_id(self, ctx: RequestContext) -> str | None:
        """What identifies the caller under the ``sticky`` rule (None: nothing does)."""
        if self.sticky == "key" and ctx.identity is not None:
            return ctx.identity.key_id
        if self.sticky in ("key", "user"):
            return ctx.user
        return None

    def assign(self, ctx: RequestContext) -> Arm:
        sticky_id = self.sticky_id(ctx)
        point = random.random() * 100 if sticky_id is None else point_of(self.experiment,
                                                                         sticky_id)
        return self.arm_at(point)

    def arm_at(self, point: float) -> Arm:
        """The arm whose range holds ``point`` (a zero-percent arm owns none)."""
        for upper, arm in self._bounds:
            if point < upper:
                return arm
        return self._last
