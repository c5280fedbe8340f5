"""The ``fallback`` strategy."""

from ferro import hookimpl

from ferro_strategy_fallback.strategy import FallbackStrategy

__all__ = ["FallbackStrategy"]


@hookimpl
def register_strategies(register):
    register("fallback", FallbackStrategy)
