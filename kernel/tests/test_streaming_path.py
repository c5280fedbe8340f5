"""Streams take the same path as JSON: fallback until the first byte, breakers, errors."""

import asyncio
from types import MappingProxyType

import orjson
from aiohttp import web
from ferro.testing import sse_body


def chunk(content=None, finish=None, usage=None):
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [] if usage else [{"index": 0, "delta": {"content": content} if content
                                          else {}, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return body


USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
GOOD = sse_body(chunk("Hi"), chunk(" there"), chunk(finish="stop"), chunk(usage=USAGE), b"[DONE]")
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "stream": True}


def two_targets(a, b, **extra):
    return {
        "strategy": {"mode": "fallback"},
        "providers": {"a": {"type": "openai", "api_key": "k", "base_url": a.url},
                      "b": {"type": "openai", "api_key": "k", "base_url": b.url}},
        "targets": [{"virtual_key": "a", **extra}, {"virtual_key": "b"}],
    }


def events(text):
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


async def test_stream_falls_back_before_its_first_byte(ferro_client, fake_upstream):
    a = await fake_upstream({"POST /chat/completions": (503, {"error": {"message": "busy"}})})
    b = await fake_upstream({"POST /chat/completions": GOOD})
    client = await ferro_client(two_targets(a, b))
    resp = await client.post("/v1/chat/completions", json=REQUEST)
    assert resp.status == 200
    data = events(await resp.text())
    assert data[-1] == "[DONE]"
    assert "".join(orjson.loads(d)["choices"][0]["delta"].get("content", "")
                   for d in data[:-1] if orjson.loads(d)["choices"]) == "Hi there"
    assert len(a.requests) == 1 and len(b.requests) == 1


async def test_usage_chunk_only_when_the_client_asks(ferro_client, fake_upstream):
    up = await fake_upstream({"POST /chat/completions": GOOD})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]})
    text = await (await client.post("/v1/chat/completions", json=REQUEST)).text()
    assert '"usage"' not in text
    assert up.requests[0].json()["stream_options"] == {"include_usage": True}
    asked = {**REQUEST, "stream_options": {"include_usage": True}}
    text = await (await client.post("/v1/chat/completions", json=asked)).text()
    assert orjson.loads(events(text)[-2])["usage"] == USAGE


async def test_mid_stream_failure_is_an_error_event_not_a_silent_cut(ferro_client, fake_upstream):
    cut = sse_body(chunk("Hi"), chunk(" the"))  # no finish, no [DONE]
    up = await fake_upstream({"POST /chat/completions": cut})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]})
    resp = await client.post("/v1/chat/completions", json=REQUEST)
    assert resp.status == 200
    data = events(await resp.text())
    error = orjson.loads(data[-2])
    assert error["error"]["code"] == "stream_truncated"
    assert "incomplete" in error["error"]["message"]
    assert data[-1] == "[DONE]"


async def test_breaker_opens_for_streams_too(ferro_client, fake_upstream):
    a = await fake_upstream({"POST /chat/completions": (500, {"error": {"message": "down"}})})
    b = await fake_upstream({"POST /chat/completions": GOOD})
    client = await ferro_client(two_targets(
        a, b, circuit_breaker={"failure_threshold": 2, "timeout": "60s"}))
    for _ in range(4):
        resp = await client.post("/v1/chat/completions", json=REQUEST)
        assert resp.status == 200
        await resp.read()
    assert len(a.requests) == 2  # open after two failures: not called again
    assert len(b.requests) == 4


async def test_exchange_completed_fires_after_the_reply(ferro_client, fake_upstream):
    from ferro import hookimpl, make_plugin_manager

    seen = []

    class Listener:
        @hookimpl
        def exchange_completed(self, exchange):
            seen.append(exchange)

    pm = make_plugin_manager(env={})
    pm.register(Listener(), name="listener")
    up = await fake_upstream({"POST /chat/completions": GOOD})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]}, pm=pm)
    await (await client.post("/v1/chat/completions", json=REQUEST)).read()
    await (await client.post("/v1/chat/completions", json={"model": "x"})).read()
    assert [(e.provider, e.stream, e.status, e.usage.total_tokens) for e in seen] == [
        ("a", True, 200, 7), ("", False, 400, 0)]  # an invalid request is an exchange too
    assert seen[0].duration > 0 and seen[0].ttfb is not None
    assert seen[1].error.code == "invalid_request"


async def test_client_disconnect_mid_stream_closes_the_upstream(ferro_client, fake_upstream):
    closed = asyncio.Event()

    async def slow(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for i in range(100):
                await resp.write(b"data: " + orjson.dumps(chunk(f"t{i}")) + b"\n\n")
                await asyncio.sleep(0.02)
        except (ConnectionResetError, asyncio.CancelledError):
            closed.set()
            raise
        return resp

    up = await fake_upstream({"POST /chat/completions": slow})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]})
    resp = await client.post("/v1/chat/completions", json=REQUEST)
    await resp.content.readline()
    resp.close()
    await asyncio.wait_for(closed.wait(), 5)


async def test_usage_riding_on_the_finish_chunk_is_split_off(ferro_client, fake_upstream):
    last = chunk(finish="stop")
    last["usage"] = USAGE
    up = await fake_upstream({"POST /chat/completions": sse_body(chunk("Hi"), last, b"[DONE]")})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]})
    text = await (await client.post("/v1/chat/completions", json=REQUEST)).text()
    data = [orjson.loads(d) for d in events(text)[:-1]]
    assert [c.get("usage") for c in data] == [None, None]
    assert data[-1]["choices"][0]["finish_reason"] == "stop"
    asked = {**REQUEST, "stream_options": {"include_usage": True}}
    text = await (await client.post("/v1/chat/completions", json=asked)).text()
    data = [orjson.loads(d) for d in events(text)[:-1]]
    assert data[-2]["choices"][0]["finish_reason"] == "stop" and "usage" not in data[-2]
    assert data[-1] == {**data[-2], "choices": [], "usage": USAGE}


async def test_after_request_plugins_see_relayed_raw_frames_assembled(ferro_client, fake_upstream):
    from ferro import hookimpl, make_plugin_manager

    seen = []

    class Capture:
        def __init__(self, config):
            pass

        async def after_request(self, ctx):
            seen.append((ctx.response.body["choices"][0]["message"]["content"],
                         ctx.response.body["choices"][0]["finish_reason"], ctx.usage.total_tokens))

    class Plugins:
        @hookimpl
        def register_plugins(self, register):
            register("capture", Capture)

    async def two_reads(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse_body(chunk("Hi"), chunk(" there")))  # relayed raw
        await asyncio.sleep(0.05)
        await resp.write(sse_body(chunk(finish="stop"), chunk(usage=USAGE), b"[DONE]"))
        return resp

    pm = make_plugin_manager(env={})
    pm.register(Plugins(), name="capture-plugin")
    up = await fake_upstream({"POST /chat/completions": two_reads})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}],
                                 "plugins": [{"name": "capture", "stage": "after_request"}]}, pm=pm)
    text = await (await client.post("/v1/chat/completions", json=REQUEST)).text()
    assert text.endswith("data: [DONE]\n\n")
    assert seen == [("Hi there", "stop", 7)]


async def test_a_stalled_stream_is_cut_as_a_timeout(ferro_client, fake_upstream):
    async def stall(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse_body(chunk("Hi")))
        await asyncio.sleep(5)
        return resp

    up = await fake_upstream({"POST /chat/completions": stall})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url, "timeout": 0.2}},
                                 "targets": [{"virtual_key": "a"}]})
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json=REQUEST), 3)
    data = events(await asyncio.wait_for(resp.text(), 3))
    assert orjson.loads(data[0])["choices"][0]["delta"]["content"] == "Hi"
    assert orjson.loads(data[1])["error"]["code"] == "upstream_timeout"


async def test_headers_that_never_come_are_a_timeout_and_fall_back(ferro_client, fake_upstream):
    async def silent(request):
        await asyncio.sleep(5)
        return web.Response()

    slow = await fake_upstream({"POST /chat/completions": silent})
    good = await fake_upstream({"POST /chat/completions": GOOD})
    config = two_targets(slow, good)
    config["providers"]["a"]["timeout"] = 0.2
    client = await ferro_client(config)
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json=REQUEST), 3)
    assert "Hi" in await resp.text()


async def test_a_malformed_upstream_chunk_ends_the_stream_with_an_error_event(
        ferro_client, fake_upstream, caplog):
    bad = b'[{"usage":{"prompt_tokens":1}}]'  # JSON, but not a chunk object
    up = await fake_upstream({"POST /chat/completions": sse_body(chunk("Hi"), bad, b"[DONE]")})
    client = await ferro_client({"providers": {"a": {"type": "openai", "api_key": "k",
                                                     "base_url": up.url}},
                                 "targets": [{"virtual_key": "a"}]})
    resp = await client.post("/v1/chat/completions", json=REQUEST)
    data = events(await resp.text())
    assert orjson.loads(data[0])["choices"][0]["delta"]["content"] == "Hi"
    assert orjson.loads(data[-2])["error"]["code"] == "internal_error"
    assert data[-1] == "[DONE]"


def test_usage_reads_only_counts():
    from ferro import Usage

    assert Usage.from_openai({"prompt_tokens": "many", "completion_tokens": 2}) == Usage(0, 2, 2)
    assert Usage.from_openai({"prompt_tokens": 3, "prompt_tokens_details": None}).total_tokens == 3
    assert Usage.from_openai([1]) == Usage()
    assert Usage.from_openai({"prompt_tokens": True, "completion_tokens": -4,
                              "total_tokens": 2.5}) == Usage()
    assert Usage.from_openai({
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3}}) == Usage(10, 5, 15, 4, 3, 2)
    assert Usage.from_openai(MappingProxyType({"prompt_tokens": 1, "completion_tokens_details": [
        "not a mapping"]})) == Usage(1, 0, 1)


async def test_a_finished_stream_gives_its_connection_back_to_the_pool(fake_upstream,
                                                                       http_session):
    """The upstream's end of the body may come after the terminal event: the connection is
    reused once it has, not closed (a new connection per stream costs a TLS handshake)."""
    from aiohttp import web
    from ferro import ChatRequest
    from ferro.testing import make_provider

    peers = set()

    async def stream(request):
        peers.add(request.transport.get_extra_info("peername"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,'
                         b'"total_tokens":2}}\n\ndata: [DONE]\n\n')
        await asyncio.sleep(0.01)  # the chunked body's last chunk comes a little later
        await resp.write_eof()
        return resp

    up = await fake_upstream({"POST /chat/completions": stream})
    provider = make_provider("openai", {"api_key": "k", "base_url": up.url}, http_session)
    for _ in range(4):
        request = ChatRequest({"model": "gpt-4o", "stream": True,
                               "messages": [{"role": "user", "content": "hi"}]})
        async for _piece in provider.stream(request):
            pass
        await asyncio.sleep(0.05)
    assert len(peers) == 1, f"one connection for every stream, got {len(peers)}"
