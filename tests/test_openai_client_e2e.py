"""The official openai client against the gateway over a real socket."""

import openai
import orjson
import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

ECHO = {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}]}


async def test_create_with_and_without_stream_on_echo(openai_client):
    client = await openai_client(ECHO)
    reply = await client.chat.completions.create(
        model="any-model", messages=[{"role": "user", "content": "hello world"}])
    assert reply.choices[0].message.content == "echo: hello world"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model_extra["provider"] == "echo"

    stream = await client.chat.completions.create(
        model="any-model", messages=[{"role": "user", "content": "hello world"}], stream=True,
        stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "echo: hello world"
    assert finish == "stop"
    assert usage.completion_tokens == 3


async def test_errors_reach_the_sdk_as_typed_exceptions(openai_client):
    config = {**ECHO, "server": {"api_keys": ["sk-right"]}}
    with pytest.raises(openai.AuthenticationError):
        await (await openai_client(config, api_key="sk-wrong")).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as info:
        await (await openai_client(config, api_key="sk-right")).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], temperature=5)
    assert "temperature must be between 0 and 2" in str(info.value)
    assert info.value.code == "invalid_request"


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}]


def tool_call_chunks():
    def chunk(delta, finish=None):
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    return sse_body(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                                    "function": {"name": "get_weather",
                                                                 "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
        chunk({}, "tool_calls"),
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
         "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
        b"[DONE]")


async def test_openai_provider_end_to_end_with_tools_and_fallback(fake_upstream, openai_client):
    down = await fake_upstream({"POST /v1/chat/completions": (
        503, {"error": {"message": "try later", "type": "server_error"}})})

    async def answer(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("stream"):
            return web.Response(body=tool_call_chunks(), content_type="text/event-stream")
        return web.json_response({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_9", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                      "prompt_tokens_details": {"cached_tokens": 2}}})

    up = await fake_upstream({"POST /v1/chat/completions": answer})
    client = await openai_client({
        "strategy": {"mode": "fallback"},
        "providers": {"primary": {"type": "openai", "api_key": "sk-a", "base_url": down.url + "/v1"},
                      "backup": {"type": "openai", "api_key": "sk-b", "base_url": up.url + "/v1"}},
        "targets": [{"virtual_key": "primary"}, {"virtual_key": "backup"}]})
    kwargs = dict(model="gpt-4o", tools=TOOLS, tool_choice="auto",
                  messages=[{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "weather in Paris?"}])
    reply = await client.chat.completions.create(**kwargs)
    call = reply.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9", "get_weather", "{\"city\":\"Paris\"}")
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.usage.prompt_tokens_details.cached_tokens == 2
    assert reply.model_extra["provider"] == "backup"
    sent = up.requests[0].json()
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto"
    assert up.requests[0].headers["Authorization"] == "Bearer sk-b"

    stream = await client.chat.completions.create(**kwargs, stream=True)
    args, ids = "", set()
    async for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or ():
                assert tc.index == 0
                if tc.id:
                    ids.add(tc.id)
                args += tc.function.arguments or ""
    assert ids == {"call_9"}
    assert orjson.loads(args) == {"city": "Paris"}
    assert len(down.requests) == 2  # tried first, both times


async def test_truncated_upstream_stream_raises_in_the_sdk(fake_upstream, openai_client):
    cut = sse_body({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                    "choices": [{"index": 0, "delta": {"content": "partial"},
                                 "finish_reason": None}]})
    up = await fake_upstream({"POST /v1/chat/completions": cut})
    client = await openai_client(single_provider("openai", api_key="k", base_url=up.url + "/v1"))
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError, match="stream ended before"):
        async for _ in stream:
            pass
