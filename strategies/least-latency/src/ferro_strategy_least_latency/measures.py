"""The two ways a target's recent latencies sum up to one estimate, and the sample a
failure counts as."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable


class Ewma:
    """Exponentially weighted moving average: each sample moves the estimate ``alpha`` of
    the way towards itself, so it follows a change within a few requests."""

    __slots__ = ("_alpha", "estimate")

    def __init__(self, alpha: float) -> None:
        self._alpha = alpha
        self.estimate: float | None = None

    def add(self, sample: float) -> None:
        estimate = self.estimate
        self.estimate = sample if estimate is None else estimate + self._alpha * (
            sample - estimate)


class Median:
    """The median of the last ``window`` samples: an occasional outlier does not move it;
    a change moves it once it holds for half the window."""

    __slots__ = ("_samples", "estimate")

    def __init__(self, window: int) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self.estimate: float | None = None

    def add(self, sample: float) -> None:
        self._samples.append(sample)
        self.estimate = statistics.median(self._samples)


Measure = Ewma | Median


def penalty(elapsed: float, estimates: Iterable[float | None]) -> float:
    """The sample a failed attempt counts as: twice the longer of its own time and the
    worst estimate among the model's targets, so a failure never looks fast."""
    worst = max((e for e in estimates if e is not None), default=0.0)
    return 2 * max(elapsed, worst)
