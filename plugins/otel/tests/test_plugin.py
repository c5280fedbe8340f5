"""The plugin in a gateway app: off without an endpoint, and with one, a listener of the
app's exchanges whose queued spans are exported when the app shuts down."""

import asyncio
import logging

import pytest
from aiohttp import web
from ferro.app import PLUGIN_MANAGER
from ferro.testing import installed_plugins, stub_config
from ferro_otel import SPANS, ExchangeSpans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture
def no_endpoint(monkeypatch):
    for name in ENDPOINTS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def collector(aiohttp_server, monkeypatch):
    """An OTLP endpoint that counts what it is sent; spans wait in the queue until the
    app shuts down."""
    posts = []

    async def traces(request):
        posts.append(await request.read())
        return web.Response(content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(app)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    return posts


def test_the_entry_point_is_installed():
    row = installed_plugins()["otel"]
    assert row["distribution"] == "ferro-otel"
    assert row["hooks"] == ["configure_app"]


async def test_without_an_endpoint_it_does_nothing(no_endpoint, ferro_app, stub_plugins,
                                                   caplog):
    with caplog.at_level(logging.INFO, logger="ferro_otel"):
        app = ferro_app(stub_config("a"), pm=stub_plugins)
    assert SPANS not in app
    assert not any(isinstance(p, ExchangeSpans) for p in app[PLUGIN_MANAGER].get_plugins())
    (line,) = [r.getMessage() for r in caplog.records if r.name == "ferro_otel"]
    assert "no OTLP endpoint is set" in line


async def test_with_an_endpoint_it_traces_the_apps_requests(collector, ferro_client,
                                                            stub_plugins):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    spans = client.app[SPANS]
    assert spans in client.app[PLUGIN_MANAGER].get_plugins()
    kept = InMemorySpanExporter()
    spans.provider.add_span_processor(SimpleSpanProcessor(kept))
    resp = await client.post("/v1/chat/completions", json=CHAT, headers={"traceparent": PARENT})
    assert resp.status == 200
    for _ in range(100):  # the exchange is completed just after the reply is sent
        if kept.get_finished_spans():
            break
        await asyncio.sleep(0.01)
    (request,) = [s for s in kept.get_finished_spans() if s.parent.is_remote]
    assert f"{request.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert request.attributes["ferro.request.id"] == resp.headers["X-Request-ID"]
    assert request.resource.attributes["service.name"] == "ferro-gateway"
    assert collector == []  # queued, not yet sent
    await client.close()
    assert len(collector) == 1  # sent at shutdown
