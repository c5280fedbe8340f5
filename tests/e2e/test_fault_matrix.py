"""The fault matrix: each upstream fault, streamed and not, under each routing strategy,
over a real socket. The first target misbehaves and the second is healthy; each cell
checks what the client saw and how many calls each upstream got.

Targets retry twice (``attempts: 2``) and honour a Retry-After of up to 0.5 s, so the 429
(Retry-After: 1) moves on at once. A 401 refuses the gateway's own key: never retried, a
502 ``upstream_auth_error`` when no other target can answer. Run with ``-s`` to print the
matrix.
"""

import asyncio

import orjson
import pytest
from aiohttp import web
from ferro.testing import sse_body

MODEL = "gpt-4o"
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL,
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def chunk(content, finish=None):
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


async def healthy(request):
    if (await request.json()).get("stream"):
        return web.Response(body=sse_body(chunk("fine"), chunk("", "stop"), b"[DONE]"),
                            content_type="text/event-stream")
    return web.json_response(ANSWER)


async def failing(request):
    return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)


async def rate_limited(request):
    return web.json_response({"error": {"message": "slow down"}}, status=429,
                             headers={"Retry-After": "1"})


async def key_refused(request):
    return web.json_response({"error": {"message": "Incorrect API key provided"}}, status=401)


async def silent(request):
    await asyncio.sleep(3)
    return web.json_response(ANSWER)


async def cut(request):
    """Starts the answer, then drops the connection."""
    stream = (await request.json()).get("stream")
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream" if stream else "application/json",
        "Content-Length": "100000"})
    await resp.prepare(request)
    await resp.write(sse_body(chunk("par")) if stream else b'{"id": "c1", "choices": [')
    request.transport.close()
    return resp


FAULTS = {"500": failing, "timeout": silent, "429 Retry-After": rate_limited, "cut": cut,
          "401": key_refused}

STRATEGIES = {
    "single": {"strategy": {"mode": "single"}},
    "fallback": {"strategy": {"mode": "fallback"}},
    "loadbalance": {"strategy": {"mode": "loadbalance"}, "weights": [1, 0]},
    "conditional": {"strategy": {"mode": "conditional", "options": {"fallback": True},
                                 "conditions": [{"key": "model", "value": MODEL,
                                                 "target_key": "p0"}]}},
    "least-latency": {"strategy": {"mode": "least-latency", "options": {"explore": 0}}},
    "cost-optimized": {"strategy": {"mode": "cost-optimized"},
                       "pricing": {f"p0/{MODEL}": {"input": 1, "output": 1},
                                   f"p1/{MODEL}": {"input": 5, "output": 5}}},
    "ab-test": {"strategy": {"mode": "ab-test", "options": {"fallback": True, "arms": [
        {"name": "first", "percent": 100, "target": "p0"},
        {"name": "second", "percent": 0, "target": "p1"}]}}},
}


def config(strategy, bad, good):
    spec = STRATEGIES[strategy]
    weights = spec.get("weights", [1, 1])
    retry = {"attempts": 2, "backoff": "10ms", "max_backoff": "500ms"}
    return {
        "strategy": spec["strategy"],
        "providers": {"p0": {"type": "openai", "api_key": "k", "base_url": bad.url},
                      "p1": {"type": "openai", "api_key": "k", "base_url": good.url}},
        "targets": [{"virtual_key": "p0", "weight": weights[0], "retry": retry,
                     "timeout": {"first_byte": "300ms"}},
                    {"virtual_key": "p1", "weight": weights[1], "retry": retry}],
        "pricing": spec.get("pricing", {}),
    }


def expected(strategy, fault, stream):
    """(what the client sees, calls to the faulty upstream, calls to the healthy one)."""
    if fault == "cut" and stream:  # the first byte was sent: the stream ends with an error
        return "200 + error event upstream_disconnected", 1, 0
    # Retry-After beyond the cap, or a refused key: no retry
    first = 1 if fault in ("429 Retry-After", "401") else 2
    if strategy == "single":
        seen = {"500": "500 upstream_error", "timeout": "504 upstream_timeout",
                "429 Retry-After": "429 rate_limit_exceeded",
                "cut": "502 upstream_disconnected", "401": "502 upstream_auth_error"}[fault]
        return seen, first, 0
    return ("200 stream from p1" if stream else "200 from p1"), first, 1


async def outcome(resp, stream):
    if resp.status != 200:
        return f"{resp.status} {(await resp.json())['error']['code']}"
    if not stream:
        await resp.read()
        return f"200 from {resp.headers['X-Ferro-Provider']}"
    text = await resp.text()
    data = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]", text
    error = orjson.loads(data[-2]).get("error")
    if error:
        return f"200 + error event {error['code']}"
    return f"200 stream from {resp.headers['X-Ferro-Provider']}"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_fault_matrix(ferro_client, fake_upstream, strategy, fault, stream):
    bad = await fake_upstream({"POST /chat/completions": FAULTS[fault]})
    good = await fake_upstream({"POST /chat/completions": healthy})
    client = await ferro_client(config(strategy, bad, good))
    resp = await client.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    seen = await outcome(resp, stream)
    cell = (seen, len(bad.requests), len(good.requests))
    print(f"| {strategy} | {fault} | {'stream' if stream else 'json'} | {seen} | "
          f"{cell[1]} | {cell[2]} |")
    assert cell == expected(strategy, fault, stream)
