"""``GET /metrics``: the text exposition format (OpenMetrics for a scraper that asks for
it), with the circuit-breaker gauge read from the gateway serving at the time of the
scrape, so that a config reload shows at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ferro_metrics_prometheus.metrics import BREAKER_STATE, GatewayMetrics

if TYPE_CHECKING:
    from ferro import Pipeline

__all__ = ["EXPOSITION", "Exposition", "serve_metrics"]


class Exposition(Collector):
    """What a scrape shows: ``source`` (the app's registry, or the multiprocess files),
    after the breaker gauge was set from ``pipeline``'s current targets; breaker series of
    targets the current config no longer has are left out."""

    def __init__(self, metrics: GatewayMetrics, pipeline: Pipeline, source: Collector) -> None:
        self.metrics = metrics
        self.pipeline = pipeline
        self.source = source

    def collect(self) -> Iterable[Metric]:
        current = self.metrics.sync_breakers(self.pipeline.gateway.targets)
        for family in self.source.collect():
            if family.name == BREAKER_STATE:
                family.samples = [s for s in family.samples
                                  if s.labels.get("provider") in current]
            yield family


EXPOSITION = web.AppKey("ferro_metrics_exposition", Exposition)


async def serve_metrics(request: web.Request) -> web.Response:
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encode(request.app[EXPOSITION]),
                        headers={"Content-Type": content_type})
