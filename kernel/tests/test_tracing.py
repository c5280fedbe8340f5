"""W3C trace context: every request has a trace, under the client's when it sends one."""

import asyncio

import pytest
from ferro import hookimpl
from ferro.testing import stub_config
from ferro.tracing import TraceContext

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_valid_traceparent_is_the_parent():
    trace = TraceContext.from_headers(PARENT, "vendor=abc")
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace.parent_id == "00f067aa0ba902b7"
    assert trace.sampled and trace.state == "vendor=abc"
    assert len(trace.span_id) == 16 and trace.span_id != trace.parent_id
    child = trace.traceparent("b7ad6b7169203331")
    assert child == "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"


def test_the_sampled_flag_is_kept():
    trace = TraceContext.from_headers(PARENT[:-2] + "00", None)
    assert not trace.sampled
    assert trace.traceparent("b7ad6b7169203331").endswith("-00")


@pytest.mark.parametrize("header", [
    None, "", "garbage", PARENT.upper(), "ff" + PARENT[2:],
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    PARENT + "-extra",
])
def test_anything_else_starts_a_new_trace(header):
    trace = TraceContext.from_headers(header, "vendor=abc")
    assert trace.parent_id is None and trace.state is None
    assert len(trace.trace_id) == 32 and int(trace.trace_id, 16) != 0
    assert trace.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_new_traces_and_spans_differ():
    ids = {TraceContext.new().trace_id for _ in range(1000)}
    assert len(ids) == 1000


async def test_every_exchange_carries_its_trace(ferro_client, stub_plugins):
    seen = []

    class Listener:
        @hookimpl
        def exchange_completed(self, exchange):
            seen.append(exchange)

    stub_plugins.register(Listener(), name="listener")
    cfg = stub_config("a")
    cfg["server"] = {"api_keys": ["sk-1"]}
    client = await ferro_client(cfg, pm=stub_plugins)
    await client.post("/v1/chat/completions", json=CHAT,
                      headers={"traceparent": PARENT, "Authorization": "Bearer sk-1"})
    await client.post("/v1/chat/completions", json=CHAT)  # refused before the body is read
    for _ in range(50):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    answered, refused = seen
    assert answered.trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert answered.trace.parent_id == "00f067aa0ba902b7"
    assert refused.status == 401 and refused.trace.parent_id is None
    assert refused.trace.trace_id != answered.trace.trace_id


async def test_each_upstream_call_carries_its_own_span_of_the_trace(ferro_client,
                                                                    fake_upstream):
    from aiohttp import web
    from ferro import make_plugin_manager

    seen = []

    async def chat(request):
        seen.append((request.headers.get("traceparent"), request.headers.get("tracestate")))
        if len(seen) == 1:
            return web.json_response({"error": {"message": "busy"}}, status=503)
        return web.json_response({"id": "c", "object": "chat.completion", "created": 1,
                                  "model": "m", "choices": [{"index": 0, "finish_reason":
                                  "stop", "message": {"role": "assistant", "content": "ok"}}]})

    exchanges = []

    class Listener:
        @hookimpl
        def exchange_completed(self, exchange):
            exchanges.append(exchange)

    up = await fake_upstream({"POST /v1/chat/completions": chat})
    pm = make_plugin_manager(env={})
    pm.register(Listener(), name="listener")
    client = await ferro_client({
        "providers": {"o": {"type": "openai", "api_key": "sk-test-key", "base_url":
                            f"{up.url}/v1"}},
        "targets": [{"virtual_key": "o", "retry": {"attempts": 2, "backoff": "1ms"}}]}, pm=pm)
    resp = await client.post("/v1/chat/completions", json=CHAT,
                             headers={"traceparent": PARENT, "tracestate": "v=1"})
    assert resp.status == 200
    for _ in range(50):
        if exchanges:
            break
        await asyncio.sleep(0.01)
    (exchange,) = exchanges
    calls = exchange.calls
    assert [(c.target, c.status, c.error, c.kind) for c in calls] == [
        ("o", 503, "upstream_unavailable", "openai"), ("o", 200, None, "openai")]
    assert [h for h, _ in seen] == [
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{c.span_id}-01" for c in calls]
    assert {s for _, s in seen} == {"v=1"}
    assert len({c.span_id for c in calls} | {exchange.trace.span_id}) == 3
    assert calls[0].start <= calls[1].start and all(c.duration > 0 for c in calls)
    assert 0 <= exchange.overhead <= exchange.ttfb
