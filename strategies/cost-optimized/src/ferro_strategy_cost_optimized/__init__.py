"""The ``cost-optimized`` strategy."""

from ferro import hookimpl

from ferro_strategy_cost_optimized.options import CostOptimizedOptions
from ferro_strategy_cost_optimized.strategy import CostOptimizedStrategy

__all__ = ["CostOptimizedOptions", "CostOptimizedStrategy"]


@hookimpl
def register_strategies(register):
    register("cost-optimized", CostOptimizedStrategy)
