"""Time limits, each a clear 504: per target (connect, first byte, total) and per request
(``X-Ferro-Timeout``, capped by ``server.max_request_timeout``), streamed and not."""

import asyncio
import contextlib
import socket
import time

import orjson
import pytest
from aiohttp import web
from ferro.app import PIPELINE
from ferro.resilience import BreakerState
from ferro.testing import sse_body

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def chunk(content, finish=None):
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


GOOD_STREAM = sse_body(chunk("hi"), chunk("", "stop"), b"[DONE]")


def config(*upstreams, timeout=None, breaker=None, **server):
    names = [f"p{i}" for i in range(len(upstreams))]
    targets = [{"virtual_key": n} for n in names]
    if timeout is not None:
        targets[0]["timeout"] = timeout
    if breaker is not None:
        targets[0]["circuit_breaker"] = breaker
    return {"strategy": {"mode": "fallback"},
            "providers": {n: {"type": "openai", "api_key": "k", "base_url": u.url}
                          for n, u in zip(names, upstreams, strict=True)},
            "targets": targets, "server": server}


def sleeping(seconds, then=ANSWER):
    async def handler(request):
        await asyncio.sleep(seconds)
        return web.json_response(then)

    return handler


def dribbling(interval, first_after=0.0):
    """A stream that starts after ``first_after`` and sends a chunk every ``interval``."""

    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await asyncio.sleep(first_after)
        for _ in range(400):
            await resp.write(sse_body(chunk("x")))
            await asyncio.sleep(interval)
        return resp

    return handler


async def test_first_byte_limit_is_a_504_and_falls_back(ferro_client, fake_upstream):
    slow = await fake_upstream({"POST /chat/completions": sleeping(2)})
    good = await fake_upstream({"POST /chat/completions": ANSWER})
    client = await ferro_client(config(slow, good, timeout={"first_byte": "200ms"}))
    started = time.perf_counter()
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 200 and resp.headers["X-Ferro-Provider"] == "p1"
    assert resp.headers["X-Ferro-Attempts"] == "2"
    assert time.perf_counter() - started < 1.5

    alone = await ferro_client(config(slow, timeout={"first_byte": "200ms"}))
    resp = await alone.post("/v1/chat/completions", json=CHAT)
    body = await resp.json()
    assert resp.status == 504
    assert body["error"]["code"] == "upstream_timeout"
    assert "no response within 0.2s" in body["error"]["message"]


async def test_total_limit_cuts_a_slow_body(ferro_client, fake_upstream):
    async def slow_body(request):
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"id": "c1", ')
        await asyncio.sleep(2)
        return resp

    up = await fake_upstream({"POST /chat/completions": slow_body})
    client = await ferro_client(config(up, timeout="300ms"))
    started = time.perf_counter()
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 504
    assert (await resp.json())["error"]["code"] == "upstream_timeout"
    assert time.perf_counter() - started < 1.5


async def test_stream_first_chunk_limit_falls_back_before_the_first_byte(ferro_client,
                                                                         fake_upstream):
    late = await fake_upstream({"POST /chat/completions": dribbling(0.01, first_after=2)})
    good = await fake_upstream({"POST /chat/completions": GOOD_STREAM})
    client = await ferro_client(config(late, good, timeout={"first_byte": 0.2}))
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    text = await resp.text()
    assert resp.status == 200 and resp.headers["X-Ferro-Provider"] == "p1"
    assert '"hi"' in text and text.endswith("data: [DONE]\n\n")


async def test_stream_total_limit_ends_the_stream_with_an_error_event(ferro_client,
                                                                      fake_upstream):
    endless = await fake_upstream({"POST /chat/completions": dribbling(0.02)})
    client = await ferro_client(config(endless, timeout={"total": "400ms"},
                                       breaker={"failure_threshold": 1}))
    started = time.perf_counter()
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    text = await asyncio.wait_for(resp.text(), 3)
    assert time.perf_counter() - started < 2
    events = [e[6:] for e in text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert error["code"] == "upstream_timeout"
    assert "total timeout of 0.4s" in error["message"]
    assert len(events) > 3  # chunks were relayed before the limit
    target = client.server.app[PIPELINE].gateway.targets[0]
    assert target.breaker.state is BreakerState.OPEN  # the breaker heard of it


async def test_connect_limit(ferro_client):
    # A listening socket whose accept queue is full: the next SYN is never answered.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)

        class Up:
            url = f"http://127.0.0.1:{port}/v1"

        client = await ferro_client(config(Up, timeout={"connect": "200ms"}))
        started = time.perf_counter()
        resp = await client.post("/v1/chat/completions", json=CHAT)
        body = await resp.json()
        elapsed = time.perf_counter() - started
    finally:
        for s in fillers:
            s.close()
        server.close()
    assert resp.status == 504, body
    assert body["error"]["code"] == "upstream_timeout"
    assert "could not connect within 0.2s" in body["error"]["message"]
    assert elapsed < 1.5


@pytest.mark.parametrize("stream", [False, True])
async def test_request_timeout_header_is_a_504_with_no_verdict_on_the_upstream(
        ferro_client, fake_upstream, stream):
    handler = dribbling(0.01, first_after=2) if stream else sleeping(2)
    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, breaker={"failure_threshold": 1}))
    started = time.perf_counter()
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream},
                             headers={"X-Ferro-Timeout": "0.25"})
    body = await resp.json()
    assert resp.status == 504
    assert body["error"]["code"] == "request_timeout"
    assert resp.headers["x-should-retry"] == "false"
    assert time.perf_counter() - started < 1.5
    target = client.server.app[PIPELINE].gateway.targets[0]
    assert target.breaker.state is BreakerState.CLOSED


async def test_request_timeout_is_capped_by_config(ferro_client, fake_upstream):
    up = await fake_upstream({"POST /chat/completions": sleeping(2)})
    client = await ferro_client(config(up, max_request_timeout="250ms"))
    started = time.perf_counter()
    resp = await client.post("/v1/chat/completions", json=CHAT,
                             headers={"X-Ferro-Timeout": "3600"})
    assert resp.status == 504
    assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
async def test_a_bad_request_timeout_is_a_400(ferro_client, fake_upstream, value):
    up = await fake_upstream({"POST /chat/completions": ANSWER})
    client = await ferro_client(config(up))
    resp = await client.post("/v1/chat/completions", json=CHAT,
                             headers={"X-Ferro-Timeout": value})
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_timeout"
    assert up.requests == []


async def test_replies_say_which_provider_and_model_answered(ferro_client, fake_upstream):
    async def answer(request):
        if (await request.json()).get("stream"):
            return web.Response(body=GOOD_STREAM, content_type="text/event-stream")
        return web.json_response(ANSWER)

    down = await fake_upstream({"POST /chat/completions": (503, {"error": {"message": "x"}})})
    good = await fake_upstream({"POST /chat/completions": answer})
    cfg = config(down, good)
    cfg["providers"]["p1"]["model_map"] = {"gpt-4o": "gpt-4o-2024-08-06"}
    cfg["targets"][0]["retry"] = {"attempts": 2, "backoff": "1ms"}
    client = await ferro_client(cfg)
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        await resp.read()
        assert resp.status == 200
        assert resp.headers["X-Ferro-Provider"] == resp.headers["X-Gateway-Provider"] == "p1"
        assert resp.headers["X-Ferro-Model"] == "gpt-4o-2024-08-06"
        assert resp.headers["X-Ferro-Attempts"] == "3"
    alone = await ferro_client(config(down))
    resp = await alone.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 503
    assert (resp.headers["X-Ferro-Provider"], resp.headers["X-Ferro-Attempts"]) == ("p0", "1")
