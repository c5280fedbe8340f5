"""Route each request to the target that answered its model fastest lately.

Latency is the time ``attempt(target)`` takes: a stream's attempt returns with its first
chunk, so for streams it is the time to first byte, and for whole answers the answer's
time. Streamed and whole answers, and each operation, are measured apart, since they are
different quantities.

The order is chosen one target at a time, when the previous one has failed:

1. targets never tried, or not tried for ``stale_after``, in config order, so each gets a
   (fresh) sample;
2. targets whose latest attempt answered, fastest estimate first;
3. targets whose first attempt is still on its way (a concurrent request already took
   them), so one probe at a time goes to a target nothing is known of;
4. targets whose latest attempt failed, fastest estimate first.

With probability ``explore`` one random other target goes before the best, so a target
that got faster again is noticed. Everything is kept in memory, per strategy instance,
for at most ``max_models`` keys.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from cachetools import LRUCache
from ferro import (
    Attempt,
    GatewayError,
    RequestContext,
    StrategyConfig,
    Target,
    can_fall_back,
    try_in_order,
)

from ferro_strategy_least_latency.measures import Ewma, Measure, Median, penalty
from ferro_strategy_least_latency.options import LeastLatencyOptions

#: What latencies are kept apart by: operation, model, streamed or not.
Key = tuple[str, str, bool]


@attrs.define(slots=True, eq=False)
class _Record:
    """What is known of one target's latency for one key."""

    measure: Measure
    #: The clock's time when the target was last picked or measured.
    tried: float
    #: Whether its latest attempt failed.
    failed: bool = False


class LeastLatencyStrategy:
    Options = LeastLatencyOptions

    def __init__(self, config: StrategyConfig, targets: list[Target], *,
                 clock: Callable[[], float] = time.perf_counter,
                 rng: random.Random | None = None) -> None:
        self.options = config.options
        self.targets = targets
        self.clock = clock
        self.rng = rng or random.Random()
        self._records: LRUCache[Key, dict[str, _Record]] = LRUCache(
            maxsize=self.options.max_models)

    async def route(self, ctx: RequestContext, attempt: Attempt[Any]) -> Any:
        records = self._records_for((ctx.operation.name, ctx.model, ctx.stream))

        async def timed(target: Target) -> Any:
            started = self.clock()
            try:
                result = await attempt(target)
            except GatewayError as exc:
                if can_fall_back(exc):  # the client's own mistakes say nothing of the target
                    self._failed(records, target, self.clock() - started)
                raise
            self._answered(records[target.name], self.clock() - started)
            return result

        return await try_in_order(ctx, self._order(ctx.eligible(self.targets), records),
                                  timed)

    def _records_for(self, key: Key) -> dict[str, _Record]:
        records = self._records.get(key)
        if records is None:
            records = self._records[key] = {}
        return records

    def _order(self, eligible: list[Target], records: dict[str, _Record]) -> Iterator[Target]:
        """The targets, best first, each chosen only when the one before it has failed."""
        left = list(eligible)
        if len(left) > 1 and self.rng.random() < self.options.explore:
            best = self._best(left, records)
            explored = self.rng.choice([t for t in left if t is not best])
            left.remove(explored)
            yield self._picked(explored, records)
        while left:
            target = self._best(left, records)
            left.remove(target)
            yield self._picked(target, records)

    def _best(self, targets: list[Target], records: dict[str, _Record]) -> Target:
        now = self.clock()
        return min(targets, key=lambda t: self._rank(records.get(t.name), now))

    def _rank(self, record: _Record | None, now: float) -> tuple[int, float]:
        """The sort key of the module docstring's order (ties keep config order)."""
        if record is None or now - record.tried >= self.options.stale_after:
            return 0, 0.0
        estimate = record.measure.estimate
        if estimate is None:
            return 2, 0.0
        return (3 if record.failed else 1), estimate

    def _picked(self, target: Target, records: dict[str, _Record]) -> Target:
        record = records.get(target.name)
        if record is None:
            records[target.name] = _Record(self._new_measure(), self.clock())
        else:
            record.tried = self.clock()
        return target

    def _new_measure(self) -> Measure:
        if self.options.measure == "p50":
            return Median(self.options.window)
        return Ewma(self.options.alpha)

    def _answered(self, record: _Record, elapsed: float) -> None:
        record.measure.add(elapsed)
        record.failed = False
        record.tried = self.clock()

    def _failed(self, records: dict[str, _Record], target: Target, elapsed: float) -> None:
        record = records[target.name]
        record.measure.add(penalty(elapsed, (r.measure.estimate for r in records.values())))
        record.failed = True
        record.tried = self.clock()
