"""Hand-built exchanges and a listener whose spans are kept in memory.

Times are sums of binary fractions of a second, so that each span's expected start and end
in nanoseconds is exact."""

from typing import Any

import attrs
import pytest
from ferro import Call, Exchange, Target, Usage
from ferro.tracing import TraceContext
from ferro_otel.spans import ExchangeSpans
from ferro_otel.targets import Targets
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
REQUEST_SPAN = "b7ad6b7169203331"
PRIMARY_SPAN = "a1a1a1a1a1a1a1a1"
BACKUP_SPAN = "b2b2b2b2b2b2b2b2"
#: The request's arrival, in epoch seconds.
STARTED = 1_700_000_000.0


@attrs.define
class FakeProvider:
    base_url: str
    model_map: dict[str, str] = attrs.Factory(dict)

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)


def fallback_targets() -> list[Target]:
    """``primary`` (an Azure OpenAI deployment mapping gpt-4o to a dated model), then
    ``backup`` (OpenAI's API on a local port)."""
    return [
        Target("primary", FakeProvider("https://primary.example.test/openai",  # type: ignore[arg-type]
                                       {"gpt-4o": "gpt-4o-2024-08-06"}), kind="azure-openai"),
        Target("backup", FakeProvider("http://127.0.0.1:8399/v1"),  # type: ignore[arg-type]
               kind="openai"),
    ]


def fallback_calls() -> list[Call]:
    """``primary`` answers 503 after 0.125 s; ``backup``, tried at 0.25 s, answers in
    0.5 s."""
    return [Call("primary", 0.0625, 0.125, 503, "upstream_unavailable", PRIMARY_SPAN),
            Call("backup", 0.25, 0.5, 200, None, BACKUP_SPAN)]


def _exchange(**fields: Any) -> Exchange:
    """A chat that fell back from ``primary`` to ``backup``, under the client's span, and
    took a second; ``fields`` change it."""
    values: dict[str, Any] = {
        "request_id": "req-1", "operation": "chat", "model": "gpt-4o", "provider": "backup",
        "stream": False, "status": 200, "started": STARTED, "duration": 1.0, "ttfb": 0.875,
        "usage": Usage(prompt_tokens=20, completion_tokens=5, total_tokens=25),
        "upstream_model": "gpt-4o", "cost": 0.00003,
        "trace": TraceContext(TRACE_ID, REQUEST_SPAN, CLIENT_SPAN),
        "calls": fallback_calls(), "targets": ["primary", "backup"], "attempts": 2,
    }
    values.update(fields)
    return Exchange(**values)


class Recorder:
    """An :class:`ExchangeSpans` over ``targets``, keeping its spans in memory."""

    def __init__(self, targets: list[Target], **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.targets = targets
        self.listener = ExchangeSpans(SimpleSpanProcessor(self.exporter),
                                      Targets(lambda: self.targets), **options)

    def finished(self, exchange: Exchange) -> list[ReadableSpan]:
        """Every span the listener made of ``exchange``."""
        self.exporter.clear()
        self.listener.exchange_completed(exchange)
        return list(self.exporter.get_finished_spans())

    def spans(self, exchange: Exchange) -> tuple[ReadableSpan, list[ReadableSpan]]:
        """The request's span (there must be exactly one) and its calls' spans, in order."""
        finished = self.finished(exchange)
        (request,) = [s for s in finished if s.kind is SpanKind.SERVER]
        calls = sorted((s for s in finished if s.kind is SpanKind.CLIENT),
                       key=lambda s: s.start_time)
        assert len(calls) + 1 == len(finished)
        return request, calls


@pytest.fixture
def recorder():
    """``recorder(targets=None, sampler=None)``: a :class:`Recorder` (over
    :func:`fallback_targets` when ``targets`` is None)."""
    made: list[Recorder] = []

    def make(targets: list[Target] | None = None, **options: Any) -> Recorder:
        made.append(Recorder(fallback_targets() if targets is None else targets, **options))
        return made[-1]

    yield make
    for rec in made:
        rec.listener.shutdown()


@pytest.fixture
def make_exchange():
    """``make_exchange(**fields)``: a chat that fell back from ``primary`` (503 after
    0.125 s) to ``backup`` (answered in 0.5 s, from 0.25 s), under the client's span; the
    request took 1 s from epoch second 1_700_000_000."""
    return _exchange
