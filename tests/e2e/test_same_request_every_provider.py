"""One OpenAI request (a system message, text plus an image, a tool) sent through every
provider to a local fake of that provider's native API, with the official openai client,
streamed and not. Each fake answers in its own wire format with the same answer: a line of
text and a get_weather tool call; the client must see the same OpenAI answer every time."""

import json

import pytest
from ferro.testing import single_provider

from tests.e2e.native_fakes import MODELS, Reply, chat_routes, wire_of

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


REPLY = Reply(TEXT, call=ARGS)
#: What the native body of each wire format holds for the system message.
SYSTEM_MARKER = {"anthropic": '"system"', "gemini": '"systemInstruction"',
                 "cohere": '"role":"system"', "openai": '"role":"system"'}


@pytest.fixture
async def client_for(fake_upstream, openai_client):
    async def start(provider):
        model = MODELS[provider]
        upstream = await fake_upstream(chat_routes(provider, REPLY))
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
    assert SYSTEM_MARKER[wire_of(provider)] in sent


@pytest.mark.parametrize("provider", sorted(MODELS))
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


@pytest.mark.parametrize("provider", sorted(MODELS))
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
