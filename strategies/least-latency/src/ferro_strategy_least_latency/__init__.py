"""The ``least-latency`` strategy."""

from ferro import hookimpl

from ferro_strategy_least_latency.options import LeastLatencyOptions
from ferro_strategy_least_latency.strategy import LeastLatencyStrategy

__all__ = ["LeastLatencyOptions", "LeastLatencyStrategy"]


@hookimpl
def register_strategies(register):
    register("least-latency", LeastLatencyStrategy)
