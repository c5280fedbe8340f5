"""The configuration, read the OpenTelemetry way: from the standard environment variables.

The SDK reads most of them itself: the exporter its endpoint, headers, timeout,
compression and certificates (``OTEL_EXPORTER_OTLP_*``), the batch processor its queue and
batch sizes (``OTEL_BSP_*``), the tracer provider its sampler (``OTEL_TRACES_SAMPLER``,
``OTEL_TRACES_SAMPLER_ARG``), and the resource ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``. What is read here is only whether to trace at all, and the
service's name and version when the environment does not give them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ferro import __version__
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)

__all__ = ["DEFAULT_SERVICE_NAME", "ENDPOINT_VARIABLES", "endpoint_variable", "resource"]

DEFAULT_SERVICE_NAME = "ferro-gateway"
#: Where the OTLP/HTTP endpoint is set: the traces endpoint (used as it is) or the base
#: one (``/v1/traces`` is appended).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def endpoint_variable(env: Mapping[str, str]) -> str | None:
    """The variable that sets where traces go, or None when none does (or when
    ``OTEL_SDK_DISABLED`` is true): then nothing is traced."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return next((name for name in ENDPOINT_VARIABLES if env.get(name, "").strip()), None)


def resource() -> Resource:
    """The gateway as a resource: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``,
    with ``service.name`` ``ferro-gateway`` and the gateway's ``service.version`` where they
    name none."""
    given = OTELResourceDetector().detect().attributes
    defaults = {SERVICE_NAME: DEFAULT_SERVICE_NAME, SERVICE_VERSION: __version__}
    return Resource.create({k: v for k, v in defaults.items() if k not in given})
