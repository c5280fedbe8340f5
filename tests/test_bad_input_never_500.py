"""Random, often malformed, chat requests through the gateway to each translating provider:
every answer is a 2xx or a 4xx in the error schema, never a 500 or a 502 caused by the
client's own request. Bounded: a fixed seed and a fixed number of requests."""

import random

import pytest
from aiohttp import web
from ferro.testing import single_provider

VALUES = [None, True, 0, -1, 1.5, "x", "", [], {}, [1], ["a"], {"a": 1}, [{}],
          [{"type": "text"}], [{"type": "text", "text": 5}], [{"type": "text", "text": "hi"}],
          [{"type": "image_url", "image_url": "x"}],
          [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
          [{"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}],
          {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
          {"type": "json_object"}, "auto", "required", "none",
          {"type": "function", "function": {"name": "f"}},
          [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
          [{"type": "function", "function": {"name": "f", "parameters": {
              "type": "object", "properties": {"a": {"type": ["string", "null"]}}}}}]]
FIELDS = ["temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "tools",
          "tool_choice", "response_format", "user", "seed", "parallel_tool_calls",
          "reasoning_effort", "logprobs", "presence_penalty"]


GOOD_CONTENT = ["hello", [{"type": "text", "text": "hi"}],
                [{"type": "text", "text": "see"},
                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]]


def random_body(rng):
    body = {k: rng.choice(VALUES) for k in rng.sample(FIELDS, rng.randint(0, 3))}
    messages = []
    for _ in range(rng.randint(1, 4)):
        role = rng.choice(["user", "assistant", "tool", "system", "developer"])
        content = rng.choice(GOOD_CONTENT if rng.random() < 0.8 else VALUES[4:19])
        message = {"role": role, "content": content}
        if role == "assistant" and rng.random() < 0.5:
            message["tool_calls"] = [{"id": "c1", "type": "function", "function": {
                "name": "f", "arguments": rng.choice(["{}", "{bad", "[1]", ""])}}]
        if role == "tool":
            message["tool_call_id"] = "c1"
        messages.append(message)
    return {**body, "messages": messages}


ANSWERS = {
    "anthropic": ("/v1/messages", "claude-sonnet-4-5", {
        "id": "m", "type": "message", "role": "assistant", "model": "c", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 1,
                                                               "output_tokens": 1}}),
    "gemini": ("/v1beta/models/{tail:.*}", "gemini-2.0-flash", {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}),
    "cohere": ("/v2/chat", "command-a-03-2025", {
        "id": "c", "finish_reason": "COMPLETE", "message": {
            "role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        "usage": {"tokens": {"input_tokens": 1, "output_tokens": 1}}}),
    "openai": ("/chat/completions", "gpt-4o", {
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}]}),
}


@pytest.mark.parametrize("provider", sorted(ANSWERS))
async def test_random_requests_get_2xx_or_a_4xx(ferro_client, fake_upstream, provider):
    path, model, answer = ANSWERS[provider]

    async def reply(request):
        return web.json_response(answer)

    upstream = await fake_upstream({f"POST {path}": reply})
    client = await ferro_client(single_provider(provider, type=provider, api_key="k",
                                                base_url=upstream.url))
    rng = random.Random(7)
    statuses = set()
    for _ in range(150):
        resp = await client.post("/v1/chat/completions",
                                 json={**random_body(rng), "model": model})
        body = await resp.json()
        statuses.add(resp.status)
        assert resp.status < 500, body
        if resp.status >= 400:
            assert body["error"]["message"] and body["error"]["type"]
    assert 200 in statuses and 400 in statuses  # both kinds really occurred
