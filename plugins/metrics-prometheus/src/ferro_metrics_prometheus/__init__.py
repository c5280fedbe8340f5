"""Prometheus metrics for the Ferro AI Gateway: ``GET /metrics``, filled from every
completed exchange and every change of a circuit breaker's state. Each app has its own
registry; see :mod:`ferro_metrics_prometheus.multiprocess` for several processes."""

from __future__ import annotations

from aiohttp import web
from ferro import PIPELINE, PLUGIN_MANAGER, hookimpl
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from ferro_metrics_prometheus.exposition import EXPOSITION, Exposition, serve_metrics
from ferro_metrics_prometheus.metrics import GatewayMetrics
from ferro_metrics_prometheus.multiprocess import (
    mark_process_dead,
    multiprocess_dir,
    values_in_files,
)

__all__ = ["METRICS", "GatewayMetrics", "mark_process_dead"]

METRICS = web.AppKey("ferro_metrics", GatewayMetrics)


@hookimpl
def configure_app(app: web.Application) -> None:
    path = multiprocess_dir()
    if path:
        values_in_files()  # before the first metric of this app
    registry = CollectorRegistry()
    metrics = app[METRICS] = GatewayMetrics(registry)
    app[PLUGIN_MANAGER].register(metrics)
    source = MultiProcessCollector(None, path) if path else registry
    app[EXPOSITION] = Exposition(metrics, app[PIPELINE], source)
    app.router.add_get("/metrics", serve_metrics)
    app.on_startup.append(_breakers_at_start)


async def _breakers_at_start(app: web.Application) -> None:
    """Each process shows its breakers from the start, scraped or not (multiprocess mode)."""
    app[METRICS].sync_breakers(app[PIPELINE].gateway.targets)
