"""DeepSeek: response_format json_schema, emulated with one forced tool (DeepSeek has JSON
mode and tools, no json_schema)."""

import pydantic
import pytest
from ferro import ChatRequest, InvalidRequestError
from ferro.testing import collect, make_provider, single_provider, sse_body

PATH = "POST /chat/completions"
MODEL = "deepseek-chat"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "count", "schema": SCHEMA, "strict": True}}
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
         "prompt_cache_hit_tokens": 8, "prompt_cache_miss_tokens": 2}


def request(**extra):
    return ChatRequest({"model": MODEL, "response_format": JSON_SCHEMA,
                        "max_completion_tokens": 50,
                        "messages": [{"role": "user", "content": "how many?"}], **extra})


def chunk(delta, finish=None, **extra):
    return {"id": "d1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


@pytest.fixture
def deepseek_at(http_session):
    return lambda upstream: make_provider("deepseek", {"api_key": "k", "base_url": upstream.url},
                                          http_session)


async def test_json_schema_goes_through_a_forced_tool(fake_upstream, deepseek_at):
    answer = {"id": "d1", "object": "chat.completion", "created": 1, "model": MODEL,
              "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                  "role": "assistant", "content": "", "reasoning_content": "count them",
                  "tool_calls": [{"index": 0, "id": "call_0_a", "type": "function",
                                  "function": {"name": "json_response",
                                               "arguments": '{"n": 3}'}}]}}],
              "usage": USAGE}
    upstream = await fake_upstream({PATH: answer})
    response = await deepseek_at(upstream).chat(request())
    sent = upstream.requests[0].json()
    assert "response_format" not in sent
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "json_response", "description": sent["tools"][0]["function"]["description"],
        "parameters": SCHEMA}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "json_response"}}
    assert sent["max_tokens"] == 50 and "max_completion_tokens" not in sent
    choice = response.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"n": 3}',
                                 "reasoning_content": "count them"}
    assert choice["finish_reason"] == "stop"
    assert response.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 8}


async def test_streamed_json_schema_arrives_as_content(fake_upstream, deepseek_at):
    body = sse_body(
        chunk({"role": "assistant", "content": None, "reasoning_content": "hm"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_0_a", "type": "function",
                               "function": {"name": "json_response", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"n"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 3}"}}]}),
        chunk({"content": None}, "tool_calls", usage=USAGE),
        b"[DONE]")
    upstream = await fake_upstream({PATH: body})
    got = await collect(deepseek_at(upstream).stream(request(stream=True)))
    sent = upstream.requests[0].json()
    assert sent["tools"][0]["function"]["name"] == "json_response"
    assert sent["stream_options"] == {"include_usage": True}
    deltas = [c["choices"][0]["delta"] for c in got]
    assert "".join(d.get("content") or "" for d in deltas) == '{"n": 3}'
    assert deltas[0]["reasoning_content"] == "hm"
    assert not any("tool_calls" in d for d in deltas)
    assert got[-1]["choices"][0]["finish_reason"] == "stop"
    assert got[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 8}


async def test_json_schema_with_client_tools_is_refused(fake_upstream, deepseek_at):
    upstream = await fake_upstream({PATH: {}})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": SCHEMA}}]
    with pytest.raises(InvalidRequestError, match="together with tools") as info:
        await deepseek_at(upstream).chat(request(tools=tools))
    assert info.value.status == 400
    assert upstream.requests == []


async def test_json_object_is_still_deepseeks_own(fake_upstream, deepseek_at):
    answer = {"id": "d1", "object": "chat.completion", "model": MODEL, "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}]}
    upstream = await fake_upstream({PATH: answer})
    await deepseek_at(upstream).chat(request(response_format={"type": "json_object"}))
    sent = upstream.requests[0].json()
    assert sent["response_format"] == {"type": "json_object"} and "tools" not in sent


async def test_the_openai_sdk_parses_the_emulated_answer(fake_upstream, openai_client):
    class Count(pydantic.BaseModel):
        n: int

    answer = {"id": "d1", "object": "chat.completion", "created": 1, "model": MODEL,
              "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                  "role": "assistant", "content": "", "tool_calls": [{
                      "index": 0, "id": "call_0_a", "type": "function",
                      "function": {"name": "json_response", "arguments": '{"n": 3}'}}]}}],
              "usage": USAGE}
    upstream = await fake_upstream({PATH: answer})
    client = await openai_client(single_provider("deepseek", type="deepseek", api_key="k",
                                                 base_url=upstream.url))
    result = await client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "how many?"}], response_format=Count)
    assert result.choices[0].message.parsed == Count(n=3)
    assert result.choices[0].finish_reason == "stop"
    sent = upstream.requests[0].json()
    assert sent["tools"][0]["function"]["parameters"]["properties"] == {
        "n": {"title": "N", "type": "integer"}}
