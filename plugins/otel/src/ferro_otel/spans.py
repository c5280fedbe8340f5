"""``ExchangeSpans``: the listener that turns each completed exchange into spans, once its
reply has been sent.

A request is a SERVER span under the client's span (from its ``traceparent``; without one,
it starts the trace); each upstream call is a CLIENT span under it. The spans get exactly
the ids the kernel gave them (see :mod:`ferro_otel.ids`), so the upstream's own spans, which
received the call's span id in ``traceparent``, join the same trace. Their times are the
exchange's: the request from its arrival to the end of its reply, a call from its start to
its answer, or, for a stream that began, to the stream's end.

A client that said "not sampled" gets no spans; a request without a parent is sampled as
the configured sampler decides. The spans are handed to the span processor, which exports
them in the background.
"""

from __future__ import annotations

from typing import Any

from ferro import Call, Exchange, TraceContext, UpstreamError, __version__, hookimpl
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from ferro_otel.attributes import call_attributes, request_attributes, span_name
from ferro_otel.ids import PresetIds
from ferro_otel.targets import Targets

__all__ = ["ExchangeSpans"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class ExchangeSpans:
    """The spans of one app's exchanges, handed to ``processor``; ``targets`` tells what a
    target is. ``sampler`` and ``resource``: the SDK's defaults, from the environment, when
    not given. Registered with the app's plugin manager, it hears that app's exchanges."""

    def __init__(self, processor: SpanProcessor, targets: Targets, *,
                 sampler: Sampler | None = None, resource: Resource | None = None) -> None:
        self._ids = PresetIds()
        self.provider = TracerProvider(sampler=sampler, resource=resource,
                                       id_generator=self._ids, shutdown_on_exit=False)
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("ferro_otel", __version__)
        self._targets = targets

    @hookimpl
    def exchange_completed(self, exchange: Exchange) -> None:
        trace = exchange.trace
        if trace is None or not trace.sampled:
            return
        answering = self._targets.get(exchange.provider) if exchange.provider else None
        arrived = _epoch_ns(exchange.started)
        request = self._start(trace.trace_id, trace.span_id, _client_parent(trace),
                              span_name(exchange.operation, exchange.model), SpanKind.SERVER,
                              request_attributes(exchange, answering), arrived)
        if not request.is_recording():  # not sampled
            return
        error = exchange.error
        if error is not None and exchange.status >= 500:  # a 4xx is the client's: left unset, as HTTP has it
            request.set_status(Status(StatusCode.ERROR, error.message))
        within = set_span_in_context(request, Context())
        end = arrived + _ns(exchange.duration)
        last = len(exchange.calls) - 1
        for i, call in enumerate(exchange.calls):
            self._call(exchange, call, trace.trace_id, i == last, within, arrived, end)
        request.end(end)

    def _call(self, exchange: Exchange, call: Call, trace_id: str, last: bool,
              within: Context, arrived: int, end: int) -> None:
        """The span of ``call`` (``last``: the exchange's last call), under the request's
        span ``within``; ``arrived`` and ``end``: the request's, in epoch nanoseconds."""
        answered = last and call.error is None
        failure = _failure(exchange, call, answered)
        target = self._targets.get(call.target)
        attributes = call_attributes(exchange, call, target, answered,
                                     failure[0] if failure else None)
        start = arrived + _ns(call.start)
        name = span_name(exchange.operation, attributes.get("gen_ai.request.model", ""))
        span = self._start(trace_id, call.span_id, within, name, SpanKind.CLIENT, attributes,
                           start)
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR, failure[1]))
        streamed = exchange.stream and call.error is None  # it ran until the stream ended
        span.end(end if streamed else start + _ns(call.duration))

    def _start(self, trace_id: str, span_id: str | None, parent: Context, name: str,
               kind: SpanKind, attributes: dict[str, Any], start: int) -> Span:
        self._ids.preset(trace_id, span_id)
        return self._tracer.start_span(name, parent, kind, attributes, start_time=start)

    def shutdown(self) -> None:
        """Export what is still queued, and stop (blocking: run it off the event loop)."""
        self.provider.shutdown()


def _client_parent(trace: TraceContext) -> Context:
    """The context of the client's span (an empty one when the gateway began the trace)."""
    if trace.parent_id is None:
        return Context()
    state = TraceState.from_header([trace.state]) if trace.state else None
    parent = SpanContext(int(trace.trace_id, 16), int(trace.parent_id, 16), is_remote=True,
                         trace_flags=_SAMPLED, trace_state=state)
    return set_span_in_context(NonRecordingSpan(parent), Context())


def _failure(exchange: Exchange, call: Call, answered: bool) -> tuple[str, str] | None:
    """The code and description of how ``call`` failed, if it did: its own error, or, for
    the call that answered, the upstream's failure after the answer began (a stream that
    broke off or ran out of time after its first chunk)."""
    if call.error is not None:
        return call.error, f"{call.error} (status {call.status})"
    error = exchange.error
    if answered and isinstance(error, UpstreamError) and error.provider == call.target:
        return error.code, error.message
    return None


def _epoch_ns(seconds: float) -> int:
    """An epoch time in nanoseconds, its whole seconds converted exactly (today's epoch
    seconds times 1e9, as a float, are off by up to a few hundred nanoseconds)."""
    whole = int(seconds)
    return whole * 1_000_000_000 + _ns(seconds - whole)


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
