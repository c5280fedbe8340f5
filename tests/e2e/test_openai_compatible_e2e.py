"""End to end, for the six providers built on OpenAICompatibleProvider: the official
``openai`` client talks to the gateway on a real socket, the gateway to a local fake of each
provider's OpenAI-shaped API. Checks what the client gets and what the upstream saw: URL
path, auth header, api-version query (Azure) and the translated body."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

IMAGE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
         "hgGAWjR9awAAAABJRU5ErkJggg==")
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [
        {"type": "text", "text": "Where is this photo? Then get the weather there."},
        {"type": "image_url", "image_url": {"url": IMAGE}}]},
]
CALL_ID = "Q8yWcR2nX"  # nine alphanumerics: valid for every provider, Mistral included
USAGE = {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}


@attrs.define
class Case:
    type: str
    model: str
    path: str  # where the upstream must be called
    settings: Any  # upstream base URL -> provider config
    auth: tuple[str, str] | None  # header the upstream must see (None: no auth at all)
    query: dict[str, str] = attrs.Factory(dict)
    usage_on_finish: bool = False  # usage rides on the finish chunk, no stream_options
    renames_max_tokens: bool = False  # max_completion_tokens -> max_tokens


CASES = {
    "groq": Case("groq", "llama-3.3-70b-versatile", "/openai/v1/chat/completions",
                 lambda url: {"api_key": "k", "base_url": url + "/openai/v1"},
                 ("Authorization", "Bearer k")),
    "together": Case("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                     "/v1/chat/completions",
                     lambda url: {"api_key": "k", "base_url": url + "/v1"},
                     ("Authorization", "Bearer k"), usage_on_finish=True,
                     renames_max_tokens=True),
    "mistral": Case("mistral", "mistral-small-latest", "/v1/chat/completions",
                    lambda url: {"api_key": "k", "base_url": url + "/v1"},
                    ("Authorization", "Bearer k"), usage_on_finish=True,
                    renames_max_tokens=True),
    "deepseek": Case("deepseek", "deepseek-chat", "/chat/completions",
                     lambda url: {"api_key": "k", "base_url": url},
                     ("Authorization", "Bearer k"), renames_max_tokens=True),
    "azure-openai": Case("azure-openai", "gpt-4o", "/openai/deployments/gpt4o-eu/chat/completions",
                         lambda url: {"api_key": "k", "base_url": url, "deployment": "gpt4o-eu"},
                         ("api-key", "k"), query={"api-version": "2024-10-21"}),
    "ollama": Case("ollama", "llama3.2", "/v1/chat/completions",
                   lambda url: {"base_url": url}, None, renames_max_tokens=True),
}


def _chunk(case: Case, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1,
            "model": case.model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}]}


def native_stream(case: Case) -> bytes:
    last = _chunk(case, {}, "tool_calls")
    events = [
        _chunk(case, {"role": "assistant", "content": ""}),
        _chunk(case, {"content": "Paris"}),
        _chunk(case, {"content": ", checking."}),
        _chunk(case, {"tool_calls": [{"index": 0, "id": CALL_ID, "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]}),
        _chunk(case, {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}),
        _chunk(case, {"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
    ]
    if case.usage_on_finish:
        events.append({**last, "usage": USAGE})
    else:
        events += [last, {**_chunk(case, {}), "choices": [], "usage": USAGE}]
    return sse_body(*events, b"[DONE]")


def native_reply(case: Case) -> dict[str, Any]:
    return {"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1, "model": case.model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Paris, checking.",
                "tool_calls": [{"id": CALL_ID, "type": "function", "function": {
                    "name": "get_weather", "arguments": '{"city": "Paris"}'}}]}}],
            "usage": USAGE}


@pytest.fixture
def gateway(fake_upstream, openai_client):
    """``await gateway(name)`` -> (openai client, fake upstream, case)."""

    async def start(name: str):
        case = CASES[name]

        async def chat(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            if body.get("stream"):
                return web.Response(body=native_stream(case), content_type="text/event-stream")
            return web.json_response(native_reply(case))

        upstream = await fake_upstream({f"POST {case.path}": chat})
        client = await openai_client(single_provider(
            name, type=case.type, **case.settings(upstream.url)))
        return client, upstream, case

    return start


def check_upstream_call(case: Case, upstream, *, stream: bool) -> dict[str, Any]:
    [call] = upstream.requests
    assert call.path == case.path
    assert call.query == case.query
    if case.auth is None:
        assert "Authorization" not in call.headers
    else:
        name, value = case.auth
        assert call.headers.get(name) == value
        if name != "Authorization":
            assert "Authorization" not in call.headers
    sent = call.json()
    assert sent["model"] == case.model
    assert sent["messages"] == MESSAGES  # system message, text + image data URL, unchanged
    assert sent["tools"] == TOOLS
    assert sent["temperature"] == 0.2
    if case.renames_max_tokens:
        assert sent["max_tokens"] == 100 and "max_completion_tokens" not in sent
    else:
        assert sent["max_completion_tokens"] == 100
    if stream:
        if case.usage_on_finish:
            assert "stream_options" not in sent
        else:
            assert sent["stream_options"] == {"include_usage": True}
    return sent


@pytest.mark.parametrize("name", list(CASES))
async def test_chat_with_image_and_tools(gateway, name):
    client, upstream, case = await gateway(name)
    response = await client.chat.completions.create(
        model=case.model, messages=MESSAGES, tools=TOOLS, temperature=0.2,
        max_completion_tokens=100)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Paris, checking."
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        CALL_ID, "get_weather", '{"city": "Paris"}')
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (21, 9)
    assert response.model_dump()["provider"] == name
    check_upstream_call(case, upstream, stream=False)


@pytest.mark.parametrize("name", list(CASES))
async def test_streamed_chat_with_image_and_tools(gateway, name):
    client, upstream, case = await gateway(name)
    stream = await client.chat.completions.create(
        model=case.model, messages=MESSAGES, tools=TOOLS, temperature=0.2,
        max_completion_tokens=100, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Paris, checking."
    calls = [tc for d in deltas for tc in d.tool_calls or ()]
    assert (calls[0].index, calls[0].id, calls[0].function.name) == (0, CALL_ID, "get_weather")
    assert all(tc.index == 0 and tc.id is None for tc in calls[1:])
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks
            if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and (usage[0].prompt_tokens, usage[0].completion_tokens) == (21, 9)
    check_upstream_call(case, upstream, stream=True)


@pytest.mark.parametrize("name", list(CASES))
async def test_tool_result_round_trip(gateway, name):
    client, upstream, case = await gateway(name)
    history = [*MESSAGES,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_7Hq2", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "call_7Hq2", "content": '{"temp_c": 21}'}]
    response = await client.chat.completions.create(model=case.model, messages=history,
                                                    tools=TOOLS)
    assert response.choices[0].message.content == "Paris, checking."
    sent = upstream.requests[0].json()["messages"]
    assert sent[:2] == MESSAGES
    assistant, tool = sent[2], sent[3]
    sent_id = assistant["tool_calls"][0]["id"]
    assert tool["tool_call_id"] == sent_id  # the result still answers the call
    assert assistant["tool_calls"][0]["function"] == history[2]["tool_calls"][0]["function"]
    assert tool["content"] == '{"temp_c": 21}'
    if name == "mistral":  # Mistral accepts only nine alphanumerics as ids
        assert len(sent_id) == 9 and sent_id.isalnum()
    else:
        assert sent_id == "call_7Hq2"
