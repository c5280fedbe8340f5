"""The gateway on a real socket, driven by the official openai client, in front of a local
fake of Anthropic's native Messages API."""

import openai
import orjson
import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

MODEL = "claude-sonnet-4-5"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]

REQUEST = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": [
            {"type": "text", "text": "Where is this, and what is the weather there?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
    ],
    "tools": TOOLS,
    "max_tokens": 300,
    "temperature": 0.3,
}

USAGE = {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 70,
         "cache_creation_input_tokens": 0}


def native_message():
    return {"id": "msg_E2E", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "That is Paris."},
                        {"type": "tool_use", "id": "toolu_W", "name": "get_weather",
                         "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": USAGE}


def native_events():
    payloads = [
        {"type": "message_start", "message": {
            "id": "msg_E2E", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**USAGE, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "That is "}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "Paris."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_W", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": 'ris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    ]
    return sse_body(*payloads, event_names=[p["type"] for p in payloads])


async def messages_api(request: web.Request) -> web.StreamResponse:
    """The fake: a JSON message, or its event stream when the request says ``stream``."""
    body = await request.json()
    if request.headers.get("x-api-key") != "k":
        return web.json_response({"type": "error", "error": {
            "type": "authentication_error", "message": "invalid x-api-key"}}, status=401)
    if body.get("stream"):
        return web.Response(body=native_events(), content_type="text/event-stream")
    return web.json_response(native_message())


@pytest.fixture
async def gateway(fake_upstream, openai_client):
    """(openai client, fake upstream) for a gateway whose one target is Anthropic."""

    async def start(routes=None):
        upstream = await fake_upstream(routes or {"POST /v1/messages": messages_api})
        client = await openai_client(single_provider(
            "anthropic", type="anthropic", api_key="k", base_url=upstream.url))
        return client, upstream

    return start


def assert_native_request(sent, *, stream):
    assert sent["model"] == MODEL
    assert sent["system"] == "You are a terse assistant."
    assert sent["max_tokens"] == 300
    assert sent["temperature"] == 0.3
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Where is this, and what is the weather there?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}}]}]
    assert sent["tools"] == [{"name": "get_weather",
                              "description": "Current weather for a city",
                              "input_schema": TOOLS[0]["function"]["parameters"]}]
    assert "tool_choice" not in sent
    assert sent.get("stream", False) is stream


async def test_chat_with_system_image_and_tools(gateway):
    client, upstream = await gateway()
    reply = await client.chat.completions.create(**REQUEST)

    sent = upstream.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "k"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert_native_request(sent.json(), stream=False)

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "That is Paris."
    [call] = choice.message.tool_calls
    assert call.id == "toolu_W"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert reply.usage.prompt_tokens == 100  # 30 uncached + 70 read from the cache
    assert reply.usage.prompt_tokens_details.cached_tokens == 70
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == 112
    assert reply.model_extra["provider"] == "anthropic"


async def test_stream_with_system_image_and_tools(gateway):
    client, upstream = await gateway()
    stream = await client.chat.completions.create(
        **REQUEST, stream=True, stream_options={"include_usage": True})
    text, finishes, usage, calls = "", [], None, {}
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or ():
                slot = calls.setdefault(delta.index, {"id": None, "name": None, "args": ""})
                if delta.id:
                    assert slot["args"] == "", "id and name come before the arguments"
                    slot["id"], slot["name"] = delta.id, delta.function.name
                slot["args"] += delta.function.arguments or ""

    assert_native_request(upstream.requests[0].json(), stream=True)
    assert text == "That is Paris."
    assert finishes == ["tool_calls"]
    assert list(calls) == [0]
    assert calls[0]["id"] == "toolu_W"
    assert calls[0]["name"] == "get_weather"
    assert orjson.loads(calls[0]["args"]) == {"city": "Paris"}
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 12, 112)
    assert usage.prompt_tokens_details.cached_tokens == 70


async def test_stream_without_include_usage_has_no_usage_chunk(gateway):
    client, _ = await gateway()
    stream = await client.chat.completions.create(**REQUEST, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_tool_calling_round_trip(gateway):
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({
            "id": "msg_2", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "Paris: 21°C, Oslo: 9°C."}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 80, "output_tokens": 10}})

    client, upstream = await gateway({"POST /v1/messages": answer})
    reply = await client.chat.completions.create(
        model=MODEL, tools=TOOLS, parallel_tool_calls=False, tool_choice="auto",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "toolu_P", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "toolu_O", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_P", "content": "21°C"},
            {"role": "tool", "tool_call_id": "toolu_O", "content": "9°C"},
        ])
    assert reply.choices[0].message.content == "Paris: 21°C, Oslo: 9°C."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 80

    sent = upstream.requests[0].json()
    assert sent["max_tokens"] == 4096  # the documented default: the client gave none
    assert sent["system"] == "Be brief."
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_P", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_O", "name": "get_weather",
             "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_P", "content": "21°C"},
            {"type": "tool_result", "tool_use_id": "toolu_O", "content": "9°C"}]}]


async def test_json_schema_answer_arrives_as_content(gateway):
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({
            "id": "msg_3", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "tool_use", "id": "toolu_J", "name": "json_response",
                         "input": {"city": "Paris", "country": "France"}}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 8}})

    client, upstream = await gateway({"POST /v1/messages": answer})
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    reply = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Capital of France?"}],
        response_format={"type": "json_schema", "json_schema": {
            "name": "place", "schema": schema, "strict": True}})
    assert orjson.loads(reply.choices[0].message.content) == {"city": "Paris",
                                                              "country": "France"}
    assert reply.choices[0].finish_reason == "stop"
    assert not reply.choices[0].message.tool_calls
    sent = upstream.requests[0].json()
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert sent["tools"][0]["input_schema"] == schema


async def test_refused_field_is_a_400_naming_it(gateway):
    client, upstream = await gateway()
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=MODEL, n=2, messages=[
            {"role": "user", "content": "x"}])
    assert "anthropic cannot express n > 1" in str(info.value)
    assert upstream.requests == []


async def test_overloaded_upstream_is_a_503(gateway):
    overloaded = (529, {"type": "error", "error": {"type": "overloaded_error",
                                                   "message": "Overloaded"}})
    client, _ = await gateway({"POST /v1/messages": overloaded})
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize(("tail", "says"), [
    pytest.param([{"type": "error", "error": {"type": "overloaded_error",
                                              "message": "Overloaded"}}],
                 "Overloaded", id="error-event"),
    pytest.param([], "stream ended before message_stop", id="cut-before-message-stop"),
])
async def test_a_stream_that_fails_after_it_started_is_an_error_not_a_short_answer(
        gateway, tail, says):
    payloads = [
        {"type": "message_start", "message": {
            "id": "msg_X", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "The answer is"}},
        *tail,
    ]
    body = sse_body(*payloads, event_names=[p["type"] for p in payloads])
    client, _ = await gateway({"POST /v1/messages": body})
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    text = ""
    with pytest.raises(openai.APIError, match=says):
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert text == "The answer is"
