"""Groq: finish-reason tables on stream chunks, and json_schema on models without it."""

import pytest
from ferro import ChatRequest, ConfigError, InvalidRequestError, UpstreamError
from ferro.testing import collect, make_provider, single_provider, sse_body
from ferro_provider_groq import GroqProvider

PATH = "POST /openai/v1/chat/completions"
LLAMA = "llama-3.3-70b-versatile"
GPT_OSS = "openai/gpt-oss-120b"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}


def request(model=LLAMA, **extra):
    return ChatRequest({"model": model, "messages": [{"role": "user", "content": "where?"}],
                        **extra})


def chunk(delta, finish=None, **extra):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": LLAMA,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def tool_answer(arguments, model=LLAMA):
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "tool_calls": [{
                    "id": "call_q1", "type": "function",
                    "function": {"name": "json_response", "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
            "x_groq": {"id": "req_1"}}


def tool_stream(*fragments):
    first = chunk({"role": "assistant", "tool_calls": [{
        "index": 0, "id": "call_q1", "type": "function",
        "function": {"name": "json_response", "arguments": fragments[0]}}]},
        x_groq={"id": "req_1"})
    rest = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]})
            for f in fragments[1:]]
    end = chunk({}, "tool_calls", x_groq={"id": "req_1", "usage": {"total_tokens": 13}})
    usage = {**chunk({}), "choices": [], "usage": {"total_tokens": 13}}
    return sse_body(first, *rest, end, usage, b"[DONE]")


@pytest.fixture
def groq_at(http_session):
    def make(upstream, **settings):
        return make_provider("groq", {"api_key": "k", "base_url": upstream.url + "/openai/v1",
                                      **settings}, http_session)
    return make


# --- the finish-reason tables reach stream chunks ------------------------------------------


@pytest.fixture
def tabled(monkeypatch):
    """GroqProvider with finish-reason tables, as a subclass or a future Groq reason needs."""
    monkeypatch.setattr(GroqProvider, "finish_reasons", {"eos": "stop"})
    monkeypatch.setattr(GroqProvider, "failed_finish_reasons",
                        {"overloaded": (503, "Groq ran out of capacity")})


async def test_stream_chunks_get_the_finish_reason_tables(fake_upstream, groq_at, tabled):
    body = sse_body(chunk({"content": "hi"}), chunk({}, "eos", x_groq={"id": "req_1"}),
                    b"[DONE]")
    upstream = await fake_upstream({PATH: body})
    got = await collect(groq_at(upstream).stream(request(stream=True)))
    assert got[-1]["choices"][0]["finish_reason"] == "stop"


async def test_a_failed_finish_reason_in_a_stream_is_an_error(fake_upstream, groq_at, tabled):
    body = sse_body(chunk({"content": "hi"}), chunk({}, "overloaded"), b"[DONE]")
    upstream = await fake_upstream({PATH: body})
    with pytest.raises(UpstreamError, match="ran out of capacity") as info:
        await collect(groq_at(upstream).stream(request(stream=True)))
    assert info.value.status == 503 and info.value.retryable


def test_x_groq_error_still_wins_over_the_tables(tabled):
    provider = make_provider("groq", {"api_key": "k"}, None)
    with pytest.raises(UpstreamError, match="over capacity"):
        provider.adapt_chunk(chunk({}, "eos", x_groq={"error": "over capacity"}))


# --- json_schema ---------------------------------------------------------------------------


async def test_json_schema_on_a_model_without_it_goes_through_a_forced_tool(fake_upstream,
                                                                            groq_at):
    upstream = await fake_upstream({PATH: tool_answer('{"city":"Paris"}')})
    response = await groq_at(upstream).chat(request(response_format=JSON_SCHEMA))
    sent = upstream.requests[0].json()
    assert "response_format" not in sent
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "json_response"}}
    assert [t["function"]["name"] for t in sent["tools"]] == ["json_response"]
    assert sent["tools"][0]["function"]["parameters"] == SCHEMA
    choice = response.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"city":"Paris"}'}
    assert choice["finish_reason"] == "stop"
    assert response.body["usage"]["total_tokens"] == 13


async def test_streamed_json_schema_arrives_as_content(fake_upstream, groq_at):
    upstream = await fake_upstream({PATH: tool_stream('{"ci', 'ty":"Pa', 'ris"}')})
    got = await collect(groq_at(upstream).stream(request(response_format=JSON_SCHEMA,
                                                         stream=True)))
    sent = upstream.requests[0].json()
    assert sent["tools"][0]["function"]["name"] == "json_response"
    assert "response_format" not in sent
    content = "".join(c["choices"][0]["delta"].get("content") or ""
                      for c in got if c["choices"])
    assert content == '{"city":"Paris"}'
    assert [c["choices"][0]["finish_reason"] for c in got if c["choices"]][-1] == "stop"
    assert not any("tool_calls" in c["choices"][0]["delta"] for c in got if c["choices"])
    assert got[-1]["usage"] == {"total_tokens": 13}


async def test_a_model_with_native_json_schema_gets_it_as_sent(fake_upstream, groq_at):
    native = {"id": "c", "object": "chat.completion", "model": GPT_OSS, "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": '{"city":"Rome"}'}}]}
    upstream = await fake_upstream({PATH: native})
    response = await groq_at(upstream).chat(request(GPT_OSS, response_format=JSON_SCHEMA))
    sent = upstream.requests[0].json()
    assert sent["response_format"] == JSON_SCHEMA and "tools" not in sent
    assert response.body["choices"][0]["message"]["content"] == '{"city":"Rome"}'


async def test_native_models_are_emulated_when_streamed(fake_upstream, groq_at):
    # Groq's structured outputs do not stream (console.groq.com/docs/structured-outputs).
    upstream = await fake_upstream({PATH: tool_stream('{"city":"Rome"}')})
    got = await collect(groq_at(upstream).stream(request(GPT_OSS, response_format=JSON_SCHEMA,
                                                         stream=True)))
    assert "response_format" not in upstream.requests[0].json()
    assert "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in got if c["choices"]) == '{"city":"Rome"}'


async def test_config_adds_native_models_and_model_map_is_followed(fake_upstream, groq_at):
    native = {"id": "c", "object": "chat.completion", "model": LLAMA, "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}]}
    upstream = await fake_upstream({PATH: native})
    provider = groq_at(upstream, json_schema_models=[LLAMA], model_map={"fast": GPT_OSS})
    assert provider.native_json_schema(request(LLAMA, response_format=JSON_SCHEMA))
    assert provider.native_json_schema(request("fast", response_format=JSON_SCHEMA))
    assert not provider.native_json_schema(request("llama-3.1-8b-instant"))
    await provider.chat(request(response_format=JSON_SCHEMA))
    assert upstream.requests[0].json()["response_format"] == JSON_SCHEMA


async def test_json_schema_with_client_tools_is_refused_before_any_call(fake_upstream, groq_at):
    upstream = await fake_upstream({PATH: {}})
    tools = [{"type": "function", "function": {"name": "weather", "parameters": SCHEMA}}]
    with pytest.raises(InvalidRequestError, match="together with tools"):
        await groq_at(upstream).chat(request(response_format=JSON_SCHEMA, tools=tools))
    with pytest.raises(InvalidRequestError, match="together with tools"):
        groq_at(upstream).stream(request(response_format=JSON_SCHEMA, tools=tools, stream=True))
    assert upstream.requests == []


async def test_answers_without_json_schema_keep_their_tool_calls(fake_upstream, groq_at):
    upstream = await fake_upstream({PATH: tool_answer("{}")})
    response = await groq_at(upstream).chat(request(response_format={"type": "json_object"}))
    assert response.body["choices"][0]["finish_reason"] == "tool_calls"
    assert response.body["choices"][0]["message"]["tool_calls"]


def test_json_schema_models_must_be_a_list_of_names():
    with pytest.raises(ConfigError, match="json_schema_models: expected a list"):
        make_provider("groq", {"api_key": "k", "json_schema_models": "vendor/new"}, None)
    with pytest.raises(ConfigError, match="json_schema_models"):
        make_provider("groq", {"api_key": "k", "json_schema_models": [3]}, None)


async def test_the_openai_sdk_streams_the_emulated_answer(fake_upstream, openai_client):
    upstream = await fake_upstream({PATH: tool_stream('{"city":', '"Paris"}')})
    client = await openai_client(single_provider("groq", type="groq", api_key="k",
                                                 base_url=upstream.url + "/openai/v1"))
    stream = await client.chat.completions.create(
        model=LLAMA, messages=[{"role": "user", "content": "where?"}],
        response_format=JSON_SCHEMA, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        '{"city":"Paris"}')
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)
