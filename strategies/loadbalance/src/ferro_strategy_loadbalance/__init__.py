"""The ``loadbalance`` strategy."""

from ferro import hookimpl

from ferro_strategy_loadbalance.strategy import LoadBalanceStrategy, weighted_order

__all__ = ["LoadBalanceStrategy", "weighted_order"]


@hookimpl
def register_strategies(register):
    register("loadbalance", LoadBalanceStrategy)
