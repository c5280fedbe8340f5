"""``strategy.options`` of the ``least-latency`` strategy, checked when the config loads."""

from __future__ import annotations

import attrs
from attrs import validators as v
from ferro import Duration

MEASURES = ("ewma", "p50")


@attrs.define
class LeastLatencyOptions:
    #: How a target's recent latencies add up to one estimate: ``ewma`` or ``p50``.
    measure: str = attrs.field(default="ewma", validator=v.in_(MEASURES))
    #: ``ewma``: how far each new sample moves the estimate towards itself (0 < alpha <= 1).
    alpha: float = attrs.field(default=0.3, validator=[v.gt(0), v.le(1)])
    #: ``p50``: how many of the latest samples the median is taken over.
    window: int = attrs.field(default=50, validator=v.ge(1))
    #: The probability of trying a random other target first, to notice one that recovered.
    explore: float = attrs.field(default=0.05, validator=[v.ge(0), v.le(1)])
    #: A target not tried for this long is tried first again, to refresh its estimate.
    stale_after: Duration = attrs.field(default=Duration(60.0), validator=v.gt(0))
    #: How many (operation, model, streamed or not) keys keep latencies; least recently
    #: used first out.
    max_models: int = attrs.field(default=1000, validator=v.ge(1))
