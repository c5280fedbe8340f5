"""Thresholds over sliding windows: what each completed exchange adds (constant work on the
request path), and the periodic check that reports a threshold crossed, and then
recovered, once each.

A rate or a spend is kept as sums in steps of 1/60 of its window (at most 61 of them,
whatever the traffic), so the window's edge moves in those steps. A percentile needs the
values themselves: the window's latest :data:`MAX_SAMPLES`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ferro import Exchange

from ferro_webhooks.events import THRESHOLD_CROSSED, THRESHOLD_RECOVERED, Event, new_event
from ferro_webhooks.options import Threshold

__all__ = ["MAX_SAMPLES", "Samples", "Thresholds", "Watch", "Window"]

#: The steps a window's sums are kept in.
STEPS = 60
#: The most values a percentile is computed over (the latest in its window).
MAX_SAMPLES = 10_000

#: Whether an exchange counts as failed (the rule ``request.failed`` uses too).
Failed = Callable[[Exchange], bool]


class Window:
    """How many values were added in the last ``span`` seconds, and their total."""

    __slots__ = ("_span", "_step", "_steps", "count", "total")

    def __init__(self, span: float) -> None:
        self._span = span
        self._step = span / STEPS
        self._steps: deque[list[float]] = deque()  # [start, count, total]
        self.count = 0
        self.total = 0.0

    def add(self, now: float, value: float) -> None:
        steps = self._steps
        if steps and now - steps[-1][0] < self._step:
            last = steps[-1]
            last[1] += 1
            last[2] += value
        else:
            steps.append([now, 1, value])
        self.count += 1
        self.total += value

    def trim(self, now: float) -> None:
        """Forget the steps that began a whole ``span`` or more before ``now``."""
        steps, edge = self._steps, now - self._span
        while steps and steps[0][0] <= edge:
            _, count, total = steps.popleft()
            self.count -= int(count)
            self.total -= total
        if not steps:
            self.count, self.total = 0, 0.0  # no rounding left behind


class Samples:
    """The values added in the last ``span`` seconds (the latest ``cap`` of them)."""

    __slots__ = ("_cap", "_span", "values")

    def __init__(self, span: float, cap: int = MAX_SAMPLES) -> None:
        self._span = span
        self._cap = cap
        self.values: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float) -> None:
        self.values.append((now, value))
        if len(self.values) > self._cap:
            self.values.popleft()

    def trim(self, now: float) -> None:
        values, edge = self.values, now - self._span
        while values and values[0][0] <= edge:
            values.popleft()

    def percentile(self, share: float) -> float:
        """The nearest-rank percentile (``share`` 0.95 for p95) of the values kept."""
        ordered = sorted(value for _, value in self.values)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class _Rate:
    """``error_rate``: the share of the window's requests that failed."""

    def __init__(self, threshold: Threshold, failed: Failed) -> None:
        self._sums = Window(threshold.window)
        self._failed = failed
        self._least = threshold.min_requests

    def observe(self, now: float, exchange: Exchange) -> None:
        self._sums.add(now, 1.0 if self._failed(exchange) else 0.0)

    def measure(self, now: float) -> tuple[float, int] | None:
        sums = self._sums
        sums.trim(now)
        if sums.count < self._least:
            return None
        return sums.total / sums.count, sums.count


class _Spend:
    """``spend``: the US dollars the window's priced requests cost."""

    def __init__(self, threshold: Threshold, failed: Failed) -> None:
        self._sums = Window(threshold.window)

    def observe(self, now: float, exchange: Exchange) -> None:
        if exchange.cost is not None:
            self._sums.add(now, exchange.cost)

    def measure(self, now: float) -> tuple[float, int] | None:
        self._sums.trim(now)
        return self._sums.total, self._sums.count


def _latency(exchange: Exchange) -> float | None:
    """A request's duration, unless it was refused as the client's mistake (a 4xx: those
    are quick and say nothing of the upstreams)."""
    return None if 400 <= exchange.status < 500 else exchange.duration


def _ttfb(exchange: Exchange) -> float | None:
    return exchange.ttfb


class _P95:
    """``p95_latency`` and ``p95_ttfb``: the 95th percentile of a time, in seconds."""

    _VALUES = {"p95_latency": _latency, "p95_ttfb": _ttfb}

    def __init__(self, threshold: Threshold, failed: Failed) -> None:
        self._samples = Samples(threshold.window)
        self._value = self._VALUES[threshold.metric]
        self._least = threshold.min_requests

    def observe(self, now: float, exchange: Exchange) -> None:
        value = self._value(exchange)
        if value is not None:
            self._samples.add(now, value)

    def measure(self, now: float) -> tuple[float, int] | None:
        samples = self._samples
        samples.trim(now)
        if len(samples.values) < self._least:
            return None
        return samples.percentile(0.95), len(samples.values)


_METRICS: dict[str, type[_Rate | _Spend | _P95]] = {
    "error_rate": _Rate, "spend": _Spend, "p95_latency": _P95, "p95_ttfb": _P95}


class Watch:
    """One configured threshold: its metric's window, and whether it is crossed now."""

    def __init__(self, threshold: Threshold, failed: Failed) -> None:
        self.threshold = threshold
        self.crossed = False
        self.metric = _METRICS[threshold.metric](threshold, failed)

    def check(self, now: float) -> Event | None:
        """The event of a change, if the metric just crossed the threshold or recovered."""
        measured = self.metric.measure(now)
        if measured is None:
            return None
        value, requests = measured
        threshold = self.threshold
        if not self.crossed and value > threshold.above:
            self.crossed = True
            return self._event(THRESHOLD_CROSSED, value, requests)
        if self.crossed and value <= threshold.recovered_at:
            self.crossed = False
            return self._event(THRESHOLD_RECOVERED, value, requests)
        return None

    def _event(self, event_type: str, value: float, requests: int) -> Event:
        threshold = self.threshold
        return new_event(event_type, {
            "threshold": threshold.label,
            "metric": threshold.metric,
            "value": value,
            "above": threshold.above,
            "recover_below": threshold.recovered_at,
            "window": float(threshold.window),
            "requests": requests,
        })


class Thresholds:
    """Every configured threshold, fed each completed exchange."""

    def __init__(self, thresholds: list[Threshold], failed: Failed,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.watches = [Watch(t, failed) for t in thresholds]
        self._clock = clock

    def __bool__(self) -> bool:
        return bool(self.watches)

    def observe(self, exchange: Exchange) -> None:
        now = self._clock()
        for watch in self.watches:
            watch.metric.observe(now, exchange)

    def check(self) -> list[Event]:
        """The events of the thresholds that changed since the last check."""
        now = self._clock()
        return [event for watch in self.watches if (event := watch.check(now)) is not None]
