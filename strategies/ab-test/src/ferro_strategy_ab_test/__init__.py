"""The ``ab-test`` strategy."""

from ferro import hookimpl

from ferro_strategy_ab_test.options import Arm, Options
from ferro_strategy_ab_test.strategy import ARM_HEADER, ABTestStrategy

__all__ = ["ARM_HEADER", "ABTestStrategy", "Arm", "Options"]


@hookimpl
def register_strategies(register):
    register("ab-test", ABTestStrategy)
