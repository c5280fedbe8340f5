"""OpenTelemetry tracing for the Ferro AI Gateway: a span for every request and one for
every upstream call, with the ids the gateway sent upstream in ``traceparent``, exported
over OTLP/HTTP in the background. Configured by the standard ``OTEL_*`` environment
variables; without an OTLP endpoint it does nothing (see :mod:`ferro_otel.environment`)."""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web
from ferro import PIPELINE, PLUGIN_MANAGER, hookimpl
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ferro_otel.environment import endpoint_variable, resource
from ferro_otel.spans import ExchangeSpans
from ferro_otel.targets import Targets

__all__ = ["SPANS", "ExchangeSpans"]

log = logging.getLogger("ferro_otel")

SPANS = web.AppKey("ferro_otel_spans", ExchangeSpans)


@hookimpl
def configure_app(app: web.Application) -> None:
    variable = endpoint_variable(os.environ)
    if variable is None:
        log.info("ferro-otel: no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or "
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): not tracing")
        return
    pipeline = app[PIPELINE]
    service = resource()
    spans = app[SPANS] = ExchangeSpans(BatchSpanProcessor(OTLPSpanExporter()),
                                       Targets(lambda: pipeline.gateway.targets),
                                       resource=service)
    app[PLUGIN_MANAGER].register(spans)
    app.on_cleanup.append(_shutdown)
    log.info("ferro-otel: exporting the traces of service %s over OTLP/HTTP to the endpoint "
             "in %s", service.attributes[SERVICE_NAME], variable)


async def _shutdown(app: web.Application) -> None:
    """Flush the spans still queued, off the event loop (after the kernel's own cleanup,
    which waits for the last exchanges)."""
    await asyncio.get_running_loop().run_in_executor(None, app[SPANS].shutdown)
