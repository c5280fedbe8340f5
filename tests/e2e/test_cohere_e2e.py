"""End to end: the official openai client -> the gateway (real socket) -> the cohere provider
-> a local fake of Cohere's native Chat API v2 (https://docs.cohere.com/reference/chat)."""

import json

import openai
import orjson
import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

MODEL = "command-a-vision-07-2025"
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAF"
       "AAH/iZk9HQAAAABJRU5ErkJggg==")
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
QUESTION = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": [
        {"type": "text", "text": "Where is this, and what is the weather there?"},
        {"type": "image_url", "image_url": {"url": PNG}}]},
]
USAGE = {"billed_units": {"input_tokens": 30, "output_tokens": 12},
         "tokens": {"input_tokens": 1650, "output_tokens": 12}, "cached_tokens": 1024}
PLAN = "I will look up the weather in Paris."


def tool_call_reply():
    return {"id": "gen-42", "finish_reason": "TOOL_CALL", "usage": USAGE, "message": {
        "role": "assistant", "tool_plan": PLAN, "tool_calls": [
            {"id": "get_weather_x1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}


def tool_call_stream():
    events = [
        {"id": "gen-43", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up "}}},
        {"type": "tool-plan-delta",
         "delta": {"message": {"tool_plan": "the weather in Paris."}}},
        {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
            "id": "get_weather_x2", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}}}},
        {"type": "tool-call-delta", "index": 0,
         "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"city\":"}}}}},
        {"type": "tool-call-delta", "index": 0,
         "delta": {"message": {"tool_calls": {"function": {"arguments": "\"Paris\"}"}}}}},
        {"type": "tool-call-end", "index": 0},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": USAGE}},
    ]
    return sse_body(*events, event_names=[e["type"] for e in events])


async def cohere_chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.json_response(tool_call_reply())
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(tool_call_stream())
    return resp


@pytest.fixture
async def gateway(fake_upstream, openai_client):
    """(openai client, fake Cohere) with the gateway between them."""

    async def start(routes):
        upstream = await fake_upstream(routes)
        client = await openai_client(single_provider(
            "cohere", type="cohere", api_key="k", base_url=upstream.url))
        return client, upstream

    return start


def assert_translated_question(sent):
    assert sent["model"] == MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": [
            {"type": "text", "text": "Where is this, and what is the weather there?"},
            {"type": "image_url", "image_url": {"url": PNG}}]}]
    assert sent["tools"] == TOOLS
    assert sent["max_tokens"] == 100


async def test_tool_call_answer(gateway):
    client, upstream = await gateway({"POST /v2/chat": cohere_chat})
    reply = await client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=TOOLS, max_tokens=100)

    sent = upstream.requests[0]
    assert sent.headers["Authorization"] == "Bearer k"
    assert_translated_question(sent.json())
    assert sent.json()["stream"] is False

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == PLAN
    [call] = choice.message.tool_calls
    assert call.id == "get_weather_x1"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert reply.usage.prompt_tokens == 1650
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == 1662
    assert reply.usage.prompt_tokens_details.cached_tokens == 1024
    assert reply.model_extra["provider"] == "cohere"


async def test_streamed_tool_call_answer(gateway):
    client, upstream = await gateway({"POST /v2/chat": cohere_chat})
    stream = await client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=TOOLS, max_tokens=100, stream=True,
        stream_options={"include_usage": True})
    text, calls, finish, usage = "", {}, None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or ():
                slot = calls.setdefault(delta.index, {"id": None, "name": None, "args": ""})
                if delta.id:
                    slot["id"] = delta.id
                if delta.function and delta.function.name:
                    assert slot["args"] == "", "the name must come before the arguments"
                    slot["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    assert slot["id"], "the id must come before the arguments"
                    slot["args"] += delta.function.arguments
            finish = choice.finish_reason or finish

    sent = upstream.requests[0].json()
    assert_translated_question(sent)
    assert sent["stream"] is True
    assert text == PLAN
    assert calls == {0: {"id": "get_weather_x2", "name": "get_weather",
                         "args": "{\"city\":\"Paris\"}"}}
    assert finish == "tool_calls"
    assert (usage.prompt_tokens, usage.completion_tokens) == (1650, 12)
    assert usage.prompt_tokens_details.cached_tokens == 1024


async def test_tool_result_round_trip(gateway):
    final = {"id": "gen-44", "finish_reason": "COMPLETE", "usage": {
        "tokens": {"input_tokens": 1700, "output_tokens": 9}},
        "message": {"role": "assistant", "content": [
            {"type": "text", "text": "Paris: 21°C and sunny."}]}}
    client, upstream = await gateway({"POST /v2/chat": final})
    reply = await client.chat.completions.create(model=MODEL, tools=TOOLS, messages=[
        *QUESTION,
        {"role": "assistant", "content": PLAN, "tool_calls": [
            {"id": "get_weather_x1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "get_weather_x1",
         "content": "{\"temp_c\":21,\"sky\":\"sunny\"}"},
    ])
    sent = upstream.requests[0].json()
    assert sent["messages"][2:] == [
        {"role": "assistant", "tool_plan": PLAN, "tool_calls": [
            {"id": "get_weather_x1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "get_weather_x1",
         "content": "{\"temp_c\":21,\"sky\":\"sunny\"}"}]
    assert reply.choices[0].message.content == "Paris: 21°C and sunny."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.tool_calls is None
    assert reply.usage.total_tokens == 1709


async def test_named_tool_choice_is_translated(gateway):
    client, upstream = await gateway({"POST /v2/chat": cohere_chat})
    other = {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {}}}}
    await client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=[*TOOLS, other], max_tokens=100,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    sent = upstream.requests[0].json()
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "REQUIRED"


async def test_cohere_errors_reach_the_sdk_typed(gateway):
    async def limited(request):
        return web.json_response({"id": "e", "message": "trial key limit reached"},
                                 status=429, headers={"Retry-After": "3"})

    client, _ = await gateway({"POST /v2/chat": limited})
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert "trial key limit reached" in str(info.value)
    assert info.value.response.headers["Retry-After"] == "3"


async def test_n_greater_than_one_is_refused_before_cohere(gateway):
    client, upstream = await gateway({"POST /v2/chat": cohere_chat})
    with pytest.raises(openai.BadRequestError, match="cohere cannot express n > 1"):
        await client.chat.completions.create(model=MODEL, messages=QUESTION, n=2)
    assert upstream.requests == []


async def test_stream_cut_before_message_end_is_an_error(gateway):
    async def cut(request):
        events = [{"id": "g", "type": "message-start", "delta": {"message": {}}},
                  {"type": "content-delta", "index": 0,
                   "delta": {"message": {"content": {"text": "Par"}}}}]
        body = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e)
                        + b"\n\n" for e in events)
        return web.Response(body=body, content_type="text/event-stream")

    client, _ = await gateway({"POST /v2/chat": cut})
    stream = await client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
    with pytest.raises(openai.APIError, match="message-end"):
        async for _ in stream:
            pass
