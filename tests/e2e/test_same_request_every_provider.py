"""One OpenAI request (a system message, text plus an image, a tool) sent through every
provider to a local fake of that provider's native API, with the official openai client,
streamed and not. Each fake answers in its own wire format with the same answer: a line of
text and a get_weather tool call; the client must see the same OpenAI answer every time."""

import json

import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
MESSAGES = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": [
        {"type": "text", "text": "Which city is this? Then get its weather."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
]
TEXT, ARGS = "Let me check.", {"city": "Paris"}


# --- native fakes ----------------------------------------------------------------------------


def openai_reply(body):
    if body.get("stream"):
        def chunk(delta, finish=None):
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        return sse_body(
            chunk({"role": "assistant", "content": TEXT}),
            chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({}, "tool_calls"),
            {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
             "model": body["model"], "choices": [],
             "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}},
            b"[DONE]")
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": TEXT, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(ARGS)}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}


def anthropic_reply(body):
    if body.get("stream"):
        events = [
            ("message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [], "stop_reason": None,
                "usage": {"input_tokens": 20, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": TEXT}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                "type": "input_json_delta", "partial_json": '{"city":'}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                "type": "input_json_delta", "partial_json": '"Paris"}'}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                               "usage": {"output_tokens": 5}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        return sse_body(*[e[1] for e in events], event_names=[e[0] for e in events])
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": TEXT},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                         "input": ARGS}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 5}}


def gemini_reply(body, stream):
    usage = {"promptTokenCount": 20, "candidatesTokenCount": 5, "totalTokenCount": 25}
    call = {"functionCall": {"name": "get_weather", "args": ARGS}}
    if stream:
        return sse_body(
            {"candidates": [{"content": {"role": "model", "parts": [{"text": TEXT}]},
                             "index": 0}], "responseId": "r1", "modelVersion": "gemini-2.0-flash"},
            {"candidates": [{"content": {"role": "model", "parts": [call]},
                             "finishReason": "STOP", "index": 0}],
             "usageMetadata": usage, "responseId": "r1", "modelVersion": "gemini-2.0-flash"})
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": TEXT}, call]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "responseId": "r1", "modelVersion": "gemini-2.0-flash"}


def cohere_reply(body):
    usage = {"billed_units": {"input_tokens": 20, "output_tokens": 5},
             "tokens": {"input_tokens": 20, "output_tokens": 5}}
    if body.get("stream"):
        events = [
            ("message-start", {"type": "message-start", "id": "c1",
                               "delta": {"message": {"role": "assistant"}}}),
            ("tool-plan-delta", {"type": "tool-plan-delta",
                                 "delta": {"message": {"tool_plan": TEXT}}}),
            ("tool-call-start", {"type": "tool-call-start", "index": 0, "delta": {"message": {
                "tool_calls": {"id": "call_1", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}}}}),
            ("tool-call-delta", {"type": "tool-call-delta", "index": 0, "delta": {"message": {
                "tool_calls": {"function": {"arguments": '{"city":'}}}}}),
            ("tool-call-delta", {"type": "tool-call-delta", "index": 0, "delta": {"message": {
                "tool_calls": {"function": {"arguments": '"Paris"}'}}}}}),
            ("tool-call-end", {"type": "tool-call-end", "index": 0}),
            ("message-end", {"type": "message-end",
                             "delta": {"finish_reason": "TOOL_CALL", "usage": usage}}),
        ]
        return sse_body(*[e[1] for e in events], event_names=[e[0] for e in events])
    return {"id": "c1", "finish_reason": "TOOL_CALL", "usage": usage, "message": {
        "role": "assistant", "tool_plan": TEXT, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(ARGS)}}]}}


def respond(reply):
    if isinstance(reply, bytes):
        return web.Response(body=reply, content_type="text/event-stream")
    return web.json_response(reply)


async def openai_api(request):
    return respond(openai_reply(await request.json()))


async def anthropic_api(request):
    return respond(anthropic_reply(await request.json()))


async def gemini_api(request):
    return respond(gemini_reply(await request.json(), request.path.endswith(":streamGenerateContent")))


async def cohere_api(request):
    return respond(cohere_reply(await request.json()))


# provider type -> (model, fake routes, what the native body must contain)
PROVIDERS = {
    "anthropic": ("claude-sonnet-4-5", {"POST /v1/messages": anthropic_api}, '"system"'),
    "gemini": ("gemini-2.0-flash", {"POST /v1beta/models/{tail:.*}": gemini_api},
               '"systemInstruction"'),
    "cohere": ("command-a-03-2025", {"POST /v2/chat": cohere_api}, '"role":"system"'),
    **{name: (model, {"POST /{tail:.*}": openai_api}, '"role":"system"') for name, model in [
        ("openai", "gpt-4o"), ("groq", "llama-3.3-70b-versatile"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"), ("mistral", "mistral-large-latest"),
        ("deepseek", "deepseek-chat"), ("azure-openai", "gpt-4o"), ("ollama", "llama3.2")]},
}


@pytest.fixture
async def client_for(fake_upstream, openai_client):
    async def start(provider):
        model, routes, _ = PROVIDERS[provider]
        upstream = await fake_upstream(routes)
        key = {} if provider == "ollama" else {"api_key": "k"}
        client = await openai_client(single_provider(
            provider, type=provider, base_url=upstream.url, **key))
        return client, upstream, model

    return start


def assert_native_request(provider, upstream):
    sent = json.dumps(upstream.requests[-1].json(), separators=(",", ":"))
    assert PNG in sent, "the image reaches the provider"
    assert "You are a weather assistant." in sent
    assert "get_weather" in sent
    assert PROVIDERS[provider][2] in sent


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_same_request_non_streaming(client_for, provider):
    client, upstream, model = await client_for(provider)
    reply = await client.chat.completions.create(model=model, messages=MESSAGES, tools=[TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == TEXT
    [call] = choice.message.tool_calls
    assert call.id and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGS
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (20, 5)
    assert reply.model_extra["provider"] == provider
    assert_native_request(provider, upstream)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_same_request_streaming(client_for, provider):
    client, upstream, model = await client_for(provider)
    stream = await client.chat.completions.create(
        model=model, messages=MESSAGES, tools=[TOOL], stream=True,
        stream_options={"include_usage": True})
    text, ids, names, args, finish, usage = "", set(), "", "", None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                assert call.index == 0
                if call.id:
                    ids.add(call.id)
                names += call.function.name or ""
                args += call.function.arguments or ""
    assert text == TEXT
    assert finish == "tool_calls"
    assert len(ids) == 1 and names == "get_weather"
    assert json.loads(args) == ARGS
    assert (usage.prompt_tokens, usage.completion_tokens) == (20, 5)
    assert_native_request(provider, upstream)
