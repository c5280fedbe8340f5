"""``PresetIds``: the SDK's id generator, handing out the ids the kernel already chose.

The kernel names every request's span and every upstream call's span, and sends the call's
span id upstream in ``traceparent``; the spans exported must carry exactly those ids, or the
upstream's spans would hang under a span that does not exist. The SDK's tracer asks its
:class:`IdGenerator` for a span id once per span it starts (and for a trace id when the span
has no parent), so setting the ids just before starting a span gives the span those ids,
through the SDK's public extension point, with its sampler, span limits and processors
working as they always do.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

__all__ = ["PresetIds"]


class PresetIds(IdGenerator):
    """Each preset id is handed out once; with none set, a random one is (as the SDK's own
    generator would)."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self.span_id = 0
        self.trace_id = 0

    def preset(self, trace_id: str, span_id: str | None) -> None:
        """The ids (hex, as in ``traceparent``) of the next span; a span id of None: a
        random one."""
        self.trace_id = int(trace_id, 16)
        self.span_id = int(span_id, 16) if span_id else 0

    def generate_span_id(self) -> int:
        span_id, self.span_id = self.span_id, 0
        return span_id or self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        trace_id, self.trace_id = self.trace_id, 0
        return trace_id or self._random.generate_trace_id()
