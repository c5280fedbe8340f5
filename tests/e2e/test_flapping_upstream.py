"""A flapping upstream opens its breaker: traffic moves to the next target without calls
to the broken one, and comes back once a half-open probe succeeds. Streamed and not, over
a real socket."""

import asyncio

import pytest
from aiohttp import web
from ferro.app import PIPELINE
from ferro.resilience import BreakerState
from ferro.testing import sse_body

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
STREAM = sse_body({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                   "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "ok"},
                                                   "finish_reason": "stop"}]}, b"[DONE]")


class Flapping:
    """Healthy, or failing with 503, as the test says."""

    def __init__(self):
        self.broken = False

    async def handle(self, request):
        if self.broken:
            return web.json_response({"error": {"message": "down"}}, status=503)
        if (await request.json()).get("stream"):
            return web.Response(body=STREAM, content_type="text/event-stream")
        return web.json_response(ANSWER)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_breaker_opens_moves_traffic_away_and_back(ferro_client, fake_upstream, stream):
    flapping = Flapping()
    primary = await fake_upstream({"POST /chat/completions": flapping.handle})
    backup = await fake_upstream({"POST /chat/completions": Flapping().handle})
    client = await ferro_client({
        "strategy": {"mode": "fallback"},
        "providers": {"primary": {"type": "openai", "api_key": "k", "base_url": primary.url},
                      "backup": {"type": "openai", "api_key": "k", "base_url": backup.url}},
        "targets": [{"virtual_key": "primary",
                     "circuit_breaker": {"failure_threshold": 3, "success_threshold": 1,
                                         "timeout": "300ms"}},
                    {"virtual_key": "backup"}]})
    breaker = client.server.app[PIPELINE].gateway.targets[0].breaker

    async def answered_by():
        resp = await client.post("/v1/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "stream": stream})
        await resp.read()
        assert resp.status == 200
        return resp.headers["X-Ferro-Provider"]

    assert await answered_by() == "primary"
    flapping.broken = True
    assert [await answered_by() for _ in range(3)] == ["backup"] * 3
    assert breaker.state is BreakerState.OPEN
    calls = len(primary.requests)
    assert [await answered_by() for _ in range(5)] == ["backup"] * 5
    assert len(primary.requests) == calls  # an open breaker makes no upstream call

    flapping.broken = False
    await asyncio.sleep(0.35)
    assert breaker.state is BreakerState.HALF_OPEN
    assert await answered_by() == "primary"  # the probe succeeds and closes the breaker
    assert breaker.state is BreakerState.CLOSED
    assert [await answered_by() for _ in range(3)] == ["primary"] * 3
