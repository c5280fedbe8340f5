"""Tracing end to end: the gateway on a loopback socket, driven by the official ``openai``
client, falling back from a failing upstream to a working one, and exporting its spans over
OTLP/HTTP to a local receiver that decodes them. The upstreams record the ``traceparent``
they are sent, so each test checks that they and the gateway's spans make one trace."""

import asyncio

import attrs
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.e2e.native_fakes import Reply, openai_chat, respond

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
MODEL = "gpt-4o"
MESSAGES = [{"role": "user", "content": "hello"}]
REPLY = Reply("four words of answer", prompt_tokens=20, completion_tokens=5)
FAILING, WORKING = "/failing/v1/chat/completions", "/v1/chat/completions"


@attrs.frozen
class Received:
    """A span as the receiver decoded it (ids in hex, as ``traceparent`` has them)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: int
    start: int
    end: int
    attributes: dict
    error: bool
    service: str

    @classmethod
    def of(cls, span: Span, service: str) -> "Received":
        values = {kv.key: getattr(kv.value, kv.value.WhichOneof("value"))
                  for kv in span.attributes}
        return cls(span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex() or None,
                   span.name, span.kind, span.start_time_unix_nano, span.end_time_unix_nano,
                   values, span.status.code == Status.STATUS_CODE_ERROR, service)


class Receiver:
    """An OTLP/HTTP trace endpoint: ``POST /v1/traces`` with a protobuf body."""

    def __init__(self) -> None:
        self.spans: list[Received] = []

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(kv.value.string_value for kv in resource_spans.resource.attributes
                           if kv.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                self.spans += [Received.of(s, service) for s in scope_spans.spans]
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def trace(self, count: int, trace_id: str | None = None) -> list[Received]:
        """The ``count`` spans of trace ``trace_id`` (of any trace when None), once they have
        all arrived: the request's first, then its calls in order."""
        for _ in range(300):
            spans = [s for s in self.spans if trace_id in (None, s.trace_id)]
            if len(spans) >= count:
                assert len(spans) == count, spans
                return sorted(spans, key=lambda s: (s.kind != Span.SPAN_KIND_SERVER, s.start))
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(spans)} of {count} spans arrived: {spans}")


@pytest.fixture
async def receiver(aiohttp_server, monkeypatch):
    """The receiver, named as the endpoint in the environment the gateway starts with."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.traces)
    server = await aiohttp_server(app)
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
                 "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # milliseconds
    return receiver


@pytest.fixture
async def gateway(receiver, fake_upstream, openai_client):
    """An ``openai`` client of a gateway that falls back from ``primary`` (its upstream
    answers 500) to ``backup``, and the upstreams both targets call."""
    async def chat(request):
        return respond(openai_chat(await request.json(), REPLY))

    upstream = await fake_upstream({
        f"POST {FAILING}": (500, {"error": {"message": "the server had an error",
                                            "type": "server_error"}}),
        f"POST {WORKING}": chat,
    })
    client = await openai_client({
        "strategy": {"mode": "fallback"},
        "providers": {
            "primary": {"type": "openai", "api_key": "sk-up", "base_url": f"{upstream.url}/failing/v1"},
            "backup": {"type": "openai", "api_key": "sk-up", "base_url": f"{upstream.url}/v1"}},
        "targets": [{"virtual_key": "primary"}, {"virtual_key": "backup"}],
    })
    return client, upstream


def sent_upstream(upstream, path):
    """The ``traceparent`` headers the upstream at ``path`` received."""
    return [r.headers.get("traceparent") for r in upstream.requests if r.path == path]


def check_one_trace(spans, upstream, trace_id, client_span):
    """The request's span under the client's (None: the trace's root), a failed span for
    the call to ``primary`` and one for ``backup`` under it, within its time, and the
    upstreams were sent the calls' own span ids."""
    request, primary, backup = spans
    assert (request.kind, primary.kind, backup.kind) == (
        Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_CLIENT)
    assert request.parent_id == client_span
    assert primary.parent_id == backup.parent_id == request.span_id
    assert request.start <= primary.start < primary.end <= backup.start < backup.end \
        <= request.end
    assert (primary.error, primary.attributes["error.type"]) == (True, "upstream_error")
    assert (backup.error, request.error) == (False, False)
    assert (primary.attributes["ferro.target"], backup.attributes["ferro.target"]) == (
        "primary", "backup")
    assert {s.service for s in spans} == {"ferro-gateway"}
    assert sent_upstream(upstream, FAILING) == [f"00-{trace_id}-{primary.span_id}-01"]
    assert sent_upstream(upstream, WORKING) == [f"00-{trace_id}-{backup.span_id}-01"]


async def test_a_traced_request_and_its_fallback_make_one_trace(gateway, receiver):
    client, upstream = gateway
    answer = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers={"traceparent": PARENT})
    assert answer.headers["x-ferro-provider"] == "backup"
    spans = await receiver.trace(3, TRACE_ID)
    check_one_trace(spans, upstream, TRACE_ID, CLIENT_SPAN)
    request, _, backup = spans
    assert request.name == "chat gpt-4o"
    assert request.attributes["ferro.request.id"] == answer.headers["x-request-id"]
    assert request.attributes["http.response.status_code"] == 200
    for span in (request, backup):
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["gen_ai.usage.input_tokens"] == 20
        assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert backup.attributes["server.address"] == "127.0.0.1"


async def test_a_traced_stream_makes_one_trace(gateway, receiver):
    client, upstream = gateway
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},
        extra_headers={"traceparent": PARENT})
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == REPLY.text
    spans = await receiver.trace(3, TRACE_ID)
    check_one_trace(spans, upstream, TRACE_ID, CLIENT_SPAN)
    request, _, backup = spans
    assert backup.end == request.end  # the call lasted until its stream ended
    assert request.attributes["gen_ai.request.stream"] is True
    assert 0 < backup.attributes["gen_ai.response.time_to_first_chunk"] \
        <= request.attributes["gen_ai.response.time_to_first_chunk"]


async def test_a_request_without_a_traceparent_starts_a_trace(gateway, receiver):
    client, upstream = gateway
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    spans = await receiver.trace(3)
    trace_id = spans[0].trace_id
    assert trace_id != TRACE_ID and {s.trace_id for s in spans} == {trace_id}
    check_one_trace(spans, upstream, trace_id, None)


async def test_a_client_that_does_not_sample_gets_no_spans(gateway, receiver):
    client, upstream = gateway
    unsampled = f"00-{TRACE_ID}-{CLIENT_SPAN}-00"
    await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                         extra_headers={"traceparent": unsampled})
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # sampled
    spans = await receiver.trace(3)  # the second request's only: exported in order
    assert TRACE_ID not in {s.trace_id for s in spans}
    assert sent_upstream(upstream, WORKING)[0].endswith("-00")
