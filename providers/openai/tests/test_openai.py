import pytest
from ferro import ChatRequest, UpstreamError
from ferro.testing import OpenAICompatibleContract, collect, make_provider, sse_body


@pytest.fixture
def openai_at(http_session):
    """``openai_at(upstream)``: an OpenAI provider pointed at a fake upstream's /v1."""
    return lambda upstream: make_provider(
        "openai", {"api_key": "k", "base_url": upstream.url + "/v1"}, http_session)


class TestOpenAIContract(OpenAICompatibleContract):
    provider_type = "openai"
    upstream_path = "/v1/chat/completions"
    model = "gpt-4o-mini"


TOOL_REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image, and the weather in Paris?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                                "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}, "strict": True}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    "parallel_tool_calls": False,
    "temperature": 0.2, "top_p": 0.9, "seed": 7, "max_completion_tokens": 50,
    "stop": ["END"], "user": "u-1", "logprobs": True, "top_logprobs": 2,
    "reasoning_effort": "low", "some_future_field": {"kept": True},
}


async def test_every_request_field_reaches_openai(fake_upstream, openai_at):
    reply = {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    upstream = await fake_upstream({"POST /v1/chat/completions": reply})
    provider = openai_at(upstream)
    await provider.chat(ChatRequest(dict(TOOL_REQUEST)))
    assert upstream.requests[0].json() == TOOL_REQUEST


async def test_streamed_tool_call_deltas_pass_through_intact(fake_upstream, openai_at):
    def chunk(delta, finish=None):
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "get_time", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}),
        chunk({}, "tool_calls"),
    ]
    upstream = await fake_upstream({"POST /v1/chat/completions": sse_body(*events, b"[DONE]")})
    provider = openai_at(upstream)
    got = await collect(provider.stream(ChatRequest({**TOOL_REQUEST, "stream": True})))
    assert got == events
    sent = upstream.requests[0].json()
    assert sent["stream_options"] == {"include_usage": True}


async def test_mid_stream_error_event_is_raised(fake_upstream, openai_at):
    body = sse_body({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]},
                    {"error": {"message": "overloaded", "type": "server_error"}})
    upstream = await fake_upstream({"POST /v1/chat/completions": body})
    provider = openai_at(upstream)
    with pytest.raises(UpstreamError, match="overloaded"):
        await collect(provider.stream(ChatRequest({"model": "m", "stream": True,
                                                   "messages": [{"role": "user",
                                                                 "content": "x"}]})))


async def test_context_length_error_is_classified(fake_upstream, openai_at):
    err = {"error": {"message": "This model's maximum context length is 128000 tokens.",
                     "type": "invalid_request_error", "code": "context_length_exceeded"}}
    upstream = await fake_upstream({"POST /v1/chat/completions": (400, err)})
    provider = openai_at(upstream)
    with pytest.raises(UpstreamError) as info:
        await provider.chat(ChatRequest({"model": "m", "messages": [
            {"role": "user", "content": "x"}]}))
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"
    assert not info.value.retryable


async def test_models_are_discovered_and_cached(fake_upstream, openai_at):
    upstream = await fake_upstream({"GET /v1/models": {"object": "list", "data": [
        {"id": "gpt-5", "object": "model", "owned_by": "openai"}]}})
    provider = openai_at(upstream)
    first = [m.id for m in await provider.list_models()]
    second = [m.id for m in await provider.list_models()]
    assert first == ["gpt-5"]  # what the upstream really serves, not the default list
    assert first == second
    assert len(upstream.requests) == 1


def test_key_and_base_url_come_from_the_environment():
    provider = make_provider("openai", {}, None,
                             env={"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://x/v1"})
    assert provider.api_key == "sk-env"
    assert provider.base_url == "http://x/v1"
    assert provider.headers["Authorization"] == "Bearer sk-env"


def test_default_base_url_serves_openai_model_families_only():
    provider = make_provider("openai", {"api_key": "k"}, None)
    assert provider.supports_model("gpt-4o-mini")
    assert provider.supports_model("o3-mini")
    assert not provider.supports_model("claude-3-5-sonnet")


async def test_plain_frames_are_relayed_raw_and_the_rest_parsed(fake_upstream, openai_at):
    import asyncio

    from aiohttp import web
    from ferro import RawFrames

    def chunk(content):
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}

    usage = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                      "total_tokens": 3}}

    async def two_reads(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse_body(chunk("a"), chunk("b")))
        await asyncio.sleep(0.05)
        await resp.write(sse_body(chunk("c"), chunk("d"), usage, b"[DONE]"))
        return resp

    upstream = await fake_upstream({"POST /v1/chat/completions": two_reads})
    request = ChatRequest({"model": "m", "stream": True,
                           "messages": [{"role": "user", "content": "x"}]})
    items = [c async for c in openai_at(upstream).stream(request)]
    assert isinstance(items[0], RawFrames)
    assert items[0].frames == sse_body(chunk("a"), chunk("b"))
    assert items[1].frames == sse_body(chunk("c"), chunk("d"))  # raw up to the usage chunk
    assert [c.as_dict() for c in items[2:]] == [usage]
    # one write per read: the first read alone; the second with the usage and [DONE]
    assert [item.more for item in items] == [False, True, True]


async def test_expired_models_are_served_stale_while_refreshing(fake_upstream, openai_at):
    import asyncio

    answers = iter([["gpt-5"], ["gpt-6"]])

    async def models(request):
        from aiohttp import web
        return web.json_response({"data": [{"id": m} for m in next(answers)]})

    upstream = await fake_upstream({"GET /v1/models": models})
    provider = openai_at(upstream)
    assert [m.id for m in await provider.list_models()] == ["gpt-5"]
    provider._discovered_at -= provider.models_ttl + 1  # let the cache expire
    assert [m.id for m in await provider.list_models()] == ["gpt-5"]  # no wait
    await asyncio.sleep(0.2)
    assert [m.id for m in await provider.list_models()] == ["gpt-6"]
    assert len(upstream.requests) == 2
