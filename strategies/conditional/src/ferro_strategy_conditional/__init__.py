"""The ``conditional`` strategy."""

from ferro import hookimpl

from ferro_strategy_conditional.strategy import ConditionalOptions, ConditionalStrategy

__all__ = ["ConditionalOptions", "ConditionalStrategy"]


@hookimpl
def register_strategies(register):
    register("conditional", ConditionalStrategy)
