"""aioresponses works on this aiohttp through ferro.testing's adapter (see patch_aioresponses),
and sees the upstream calls of an in-process gateway (see route_mocks_to_session)."""

import aiohttp
import pytest
from aioresponses import aioresponses
from ferro import ChatRequest, UpstreamError
from ferro.http_client import HTTPClient
from ferro.testing import make_provider

REPLY = {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "mocked"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
REQUEST = ChatRequest({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})


async def test_mocked_upstream_answers():
    async with aiohttp.ClientSession() as session:
        provider = make_provider("openai", {"api_key": "k", "base_url": "http://mock.test/v1"},
                                 session)
        with aioresponses() as mocked:
            mocked.post("http://mock.test/v1/chat/completions", payload=REPLY)
            response = await provider.chat(REQUEST)
            [(_, call)] = mocked.requests.items()
    assert response.body["choices"][0]["message"]["content"] == "mocked"
    assert call[0].kwargs["headers"]["Authorization"] == "Bearer k"


async def test_mocked_rate_limit_keeps_retry_after():
    async with aiohttp.ClientSession() as session:
        provider = make_provider("openai", {"api_key": "k", "base_url": "http://mock.test/v1"},
                                 session)
        with aioresponses() as mocked:
            mocked.post("http://mock.test/v1/chat/completions", status=429,
                        payload={"error": {"message": "slow down"}},
                        headers={"Retry-After": "12"})
            with pytest.raises(UpstreamError) as info:
                await provider.chat(REQUEST)
    assert (info.value.status, info.value.headers) == (429, {"Retry-After": "12"})


async def test_a_mock_sees_the_calls_of_an_in_process_gateway(ferro_client):
    client = await ferro_client({"providers": {"openai": {
        "type": "openai", "api_key": "k", "base_url": "http://mock.test/v1"}}})
    with aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        mocked.post("http://mock.test/v1/chat/completions", payload=REPLY)
        resp = await client.post("/v1/chat/completions", json=REQUEST.body)
        body = await resp.json()
    assert resp.status == 200, body
    assert body["choices"][0]["message"]["content"] == "mocked"
    assert HTTPClient.enabled  # the gateway's own client is back once the mock stops
