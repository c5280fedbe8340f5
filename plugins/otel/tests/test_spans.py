"""The spans of hand-built exchanges: their ids and parents, times, kinds and sampling."""

from ferro import Call
from ferro.tracing import TraceContext
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode, TraceState


def hex_ids(span):
    """A span's trace id and span id, and its parent's span id, as ``traceparent`` has
    them."""
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}", parent


def test_the_spans_carry_the_kernels_ids(recorder, make_exchange):
    exchange = make_exchange()
    request, (primary, backup) = recorder().spans(exchange)
    trace = exchange.trace
    assert hex_ids(request) == (trace.trace_id, trace.span_id, trace.parent_id)
    assert request.parent.is_remote
    assert hex_ids(primary) == (trace.trace_id, exchange.calls[0].span_id, trace.span_id)
    assert hex_ids(backup) == (trace.trace_id, exchange.calls[1].span_id, trace.span_id)
    assert not primary.parent.is_remote
    assert (request.kind, primary.kind, backup.kind) == (SpanKind.SERVER, SpanKind.CLIENT,
                                                         SpanKind.CLIENT)


def test_a_request_without_a_client_span_starts_the_trace_with_the_kernels_id(
        recorder, make_exchange):
    exchange = make_exchange(trace=TraceContext.new())
    request, calls = recorder().spans(exchange)
    assert hex_ids(request) == (exchange.trace.trace_id, exchange.trace.span_id, None)
    assert [hex_ids(c)[2] for c in calls] == [exchange.trace.span_id] * 2


def test_the_clients_tracestate_goes_on(recorder, make_exchange):
    exchange = make_exchange(trace=TraceContext.from_headers(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=abc,other=1"))
    request, _ = recorder().spans(exchange)
    assert request.context.trace_state == TraceState([("vendor", "abc"), ("other", "1")])
    assert request.parent.trace_state == request.context.trace_state


def test_the_times_are_the_exchanges(recorder, make_exchange):
    request, (primary, backup) = recorder().spans(make_exchange())
    second = 1_700_000_000 * 10**9
    assert (request.start_time, request.end_time) == (second, second + 10**9)
    assert (primary.start_time, primary.end_time) == (second + 62_500_000, second + 187_500_000)
    assert (backup.start_time, backup.end_time) == (second + 250_000_000, second + 750_000_000)


def test_a_stream_that_began_ends_with_the_stream(recorder, make_exchange):
    request, (primary, backup) = recorder().spans(make_exchange(stream=True))
    second = 1_700_000_000 * 10**9
    assert primary.end_time == second + 187_500_000  # failed before its first chunk
    assert (backup.start_time, backup.end_time) == (second + 250_000_000, request.end_time)
    assert backup.attributes["gen_ai.response.time_to_first_chunk"] == 0.5
    assert "gen_ai.response.time_to_first_chunk" not in primary.attributes
    assert request.attributes["gen_ai.response.time_to_first_chunk"] == 0.875
    assert request.attributes["gen_ai.request.stream"] is True


def test_a_client_that_does_not_sample_gets_no_spans(recorder, make_exchange):
    unsampled = TraceContext.from_headers(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None)
    assert recorder(sampler=ALWAYS_ON).finished(make_exchange(trace=unsampled)) == []


def test_without_a_client_span_the_sampler_decides(recorder, make_exchange):
    rec = recorder(sampler=ParentBased(ALWAYS_OFF))
    assert rec.finished(make_exchange(trace=TraceContext.new())) == []
    _, calls = rec.spans(make_exchange())  # a sampled client span: followed
    assert len(calls) == 2


def test_a_call_without_a_span_id_still_hangs_under_the_request(recorder, make_exchange):
    exchange = make_exchange(calls=[Call("backup", 0.25, 0.5)])
    request, (call,) = recorder().spans(exchange)
    assert call.parent.span_id == request.context.span_id
    assert call.context.span_id not in (0, request.context.span_id)


def test_a_refused_call_is_a_span_of_no_time(recorder, make_exchange):
    refused = Call("primary", 0.0625, 0.0, 503, "circuit_open", "c3c3c3c3c3c3c3c3")
    _, (call, _) = recorder().spans(make_exchange(calls=[refused,
                                                         *make_exchange().calls[1:]]))
    assert call.start_time == call.end_time
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "circuit_open"


def test_a_request_no_target_served_is_one_span(recorder, make_exchange):
    exchange = make_exchange(calls=[], provider="", status=400, upstream_model="",
                             cost=None)
    request, calls = recorder().spans(exchange)
    assert calls == []
    assert request.name == "chat gpt-4o"


def test_each_exchange_gets_its_own_ids(recorder, make_exchange):
    rec = recorder()
    first, _ = rec.spans(make_exchange(trace=TraceContext.new()))
    second, _ = rec.spans(make_exchange(trace=TraceContext.new()))
    assert first.context.trace_id != second.context.trace_id
    assert first.context.span_id != second.context.span_id
