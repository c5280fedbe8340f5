"""The provider against a local fake of the Messages API: contract, HTTP, errors, models."""

import pytest
from aiohttp import web
from ferro import ChatRequest, ConfigError, InvalidRequestError, UpstreamError
from ferro.testing import ProviderContract, collect, make_provider, sse_body

MODEL = "claude-sonnet-4-5"


def message(content, stop_reason="end_turn", usage=None, **extra):
    """A Messages API response body as documented."""
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": MODEL,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or {"input_tokens": 10, "output_tokens": 5}, **extra}


def events(*payloads):
    """An SSE body with ``event:`` lines named after each payload's type, as Anthropic sends."""
    return sse_body(*payloads, event_names=[p["type"] for p in payloads])


def start(input_tokens=10, **usage):
    return {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage}}}


def text_block(index, *parts):
    return [{"type": "content_block_start", "index": index,
             "content_block": {"type": "text", "text": ""}},
            *({"type": "content_block_delta", "index": index,
               "delta": {"type": "text_delta", "text": p}} for p in parts),
            {"type": "content_block_stop", "index": index}]


def end(stop_reason="end_turn", output_tokens=5, **delta):
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason,
                                                "stop_sequence": None, **delta},
             "usage": {"output_tokens": output_tokens}},
            {"type": "message_stop"}]


class TestAnthropicContract(ProviderContract):
    provider_type = "anthropic"
    upstream_path = "/v1/messages"
    model = MODEL

    def native_reply(self, text, prompt_tokens, completion_tokens):
        return message([{"type": "text", "text": text}],
                       usage={"input_tokens": prompt_tokens, "output_tokens": completion_tokens})

    def native_stream(self, parts, prompt_tokens, completion_tokens):
        return events(start(prompt_tokens), {"type": "ping"}, *text_block(0, *parts),
                      *end(output_tokens=completion_tokens))

    def native_truncated_stream(self, parts):
        return events(start(), *text_block(0, *parts), *end()[:1])  # no message_stop

    def native_error(self, status, message):
        kinds = {401: "authentication_error", 429: "rate_limit_error", 500: "api_error",
                 503: "overloaded_error"}
        return {"type": "error", "error": {"type": kinds.get(status, "api_error"),
                                           "message": message},
                "request_id": "req_011"}

    def check_auth(self, request):
        assert request.headers.get("x-api-key") == "test-key"
        assert request.headers.get("anthropic-version") == "2023-06-01"
        assert "Authorization" not in request.headers


@pytest.fixture
def anthropic_at(http_session):
    """``anthropic_at(upstream, **settings)``: a provider pointed at a fake upstream."""
    return lambda upstream, **kw: make_provider(
        "anthropic", {"api_key": "k", "base_url": upstream.url, **kw}, http_session)


def chat(**body):
    return ChatRequest({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body})


async def test_configured_headers_reach_upstream_and_beta_passes_through(
        fake_upstream, anthropic_at):
    upstream = await fake_upstream({"POST /v1/messages": message([{"type": "text",
                                                                   "text": "ok"}])})
    provider = anthropic_at(upstream, headers={
        "anthropic-beta": "prompt-caching-2024-07-31", "Anthropic-Version": "2024-01-01"})
    await provider.chat(chat())
    sent = upstream.requests[0]
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["x-api-key"] == "k"
    assert sent.json()["max_tokens"] == 4096
    assert "stream" not in sent.json()


async def test_default_max_tokens_is_configurable(fake_upstream, anthropic_at):
    upstream = await fake_upstream({"POST /v1/messages": message([{"type": "text",
                                                                   "text": "ok"}])})
    provider = anthropic_at(upstream, default_max_tokens=1000)
    await provider.chat(chat())
    await provider.chat(chat(max_tokens=7))
    assert [r.json()["max_tokens"] for r in upstream.requests] == [1000, 7]


def test_options_are_checked():
    with pytest.raises(ConfigError, match="default_max_tokens' must be > 0"):
        make_provider("anthropic", {"api_key": "k", "default_max_tokens": 0}, None)
    with pytest.raises(ConfigError, match="unknown key 'max_tokens_default'"):
        make_provider("anthropic", {"api_key": "k", "max_tokens_default": 5}, None)


async def test_model_map_applies_upstream(fake_upstream, anthropic_at):
    upstream = await fake_upstream({"POST /v1/messages": message([{"type": "text",
                                                                   "text": "ok"}])})
    provider = anthropic_at(upstream, model_map={"smart": "claude-opus-4-1"})
    response = await provider.chat(ChatRequest({"model": "smart", "messages": [
        {"role": "user", "content": "hi"}]}))
    assert upstream.requests[0].json()["model"] == "claude-opus-4-1"
    assert response.body["model"] == MODEL  # the model that answered, as the upstream said


async def test_tool_call_answer_keeps_ids_and_arguments(fake_upstream, anthropic_at):
    reply = message([
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {}},
    ], stop_reason="tool_use")
    upstream = await fake_upstream({"POST /v1/messages": reply})
    response = (await anthropic_at(upstream).chat(chat())).body
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_A", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_B", "type": "function", "function": {"name": "get_time",
                                                           "arguments": "{}"}}]
    assert response["provider"] == "anthropic"


async def test_refused_requests_never_reach_upstream(fake_upstream, anthropic_at):
    upstream = await fake_upstream({"POST /v1/messages": message([])})
    provider = anthropic_at(upstream)
    with pytest.raises(InvalidRequestError, match="n > 1"):
        await provider.chat(chat(n=2))
    with pytest.raises(InvalidRequestError, match="n > 1"):
        await collect(provider.stream(chat(n=3, stream=True)))
    assert upstream.requests == []


@pytest.mark.parametrize(("status", "kind", "expect_status", "retryable"), [
    (400, "invalid_request_error", 400, False),
    (401, "authentication_error", 502, False),  # the gateway's key was refused
    (403, "permission_error", 502, False),
    (404, "not_found_error", 404, False),
    (413, "request_too_large", 413, False),
    (429, "rate_limit_error", 429, True),
    (500, "api_error", 500, True),
    (529, "overloaded_error", 503, True),
])
async def test_error_statuses_map_to_the_one_schema(fake_upstream, anthropic_at, status, kind,
                                                    expect_status, retryable):
    body = {"type": "error", "error": {"type": kind, "message": f"it failed: {kind}"},
            "request_id": "req_1"}
    upstream = await fake_upstream({"POST /v1/messages": (status, body)})
    with pytest.raises(UpstreamError) as info:
        await anthropic_at(upstream).chat(chat())
    assert info.value.status == expect_status
    assert info.value.retryable is retryable
    assert f"it failed: {kind}" in info.value.message
    if status == 529:
        assert info.value.code == "upstream_overloaded"


async def test_prompt_too_long_is_a_context_length_error(fake_upstream, anthropic_at):
    body = {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "prompt is too long: 215000 tokens > 200000 "
                                                  "maximum"}}
    upstream = await fake_upstream({"POST /v1/messages": (400, body)})
    with pytest.raises(UpstreamError) as info:
        await anthropic_at(upstream).chat(chat())
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"


async def test_overloaded_stream_before_first_byte_is_retryable(fake_upstream, anthropic_at):
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream = await fake_upstream({"POST /v1/messages": (529, body)})
    with pytest.raises(UpstreamError) as info:
        await collect(anthropic_at(upstream).stream(chat(stream=True)))
    assert (info.value.status, info.value.retryable) == (503, True)


async def test_models_are_discovered_across_pages_and_cached(fake_upstream, anthropic_at):
    async def models(request: web.Request) -> web.Response:
        assert request.headers["x-api-key"] == "k"
        assert request.headers["anthropic-version"] == "2023-06-01"
        if request.query.get("after_id") == "claude-b":
            return web.json_response({"data": [
                {"type": "model", "id": "claude-c", "display_name": "C",
                 "created_at": "2025-02-19T00:00:00Z"}],
                "has_more": False, "first_id": "claude-c", "last_id": "claude-c"})
        return web.json_response({"data": [
            {"type": "model", "id": "claude-a", "display_name": "A",
             "created_at": "2025-05-14T00:00:00Z"},
            {"type": "model", "id": "claude-b", "display_name": "B",
             "created_at": "2025-05-14T00:00:00Z"}],
            "has_more": True, "first_id": "claude-a", "last_id": "claude-b"})

    upstream = await fake_upstream({"GET /v1/models": models})
    provider = anthropic_at(upstream)
    first = await provider.list_models()
    second = await provider.list_models()
    ids = [m.id for m in first]
    assert {"claude-a", "claude-b", "claude-c"} <= set(ids)
    assert "claude-sonnet-4-5" not in ids  # what the API reports replaces the defaults
    assert [m.id for m in second] == ids
    assert len(upstream.requests) == 2  # two pages, once
    assert next(m for m in first if m.id == "claude-c").created == 1739923200
    await provider.check_health()


async def test_health_check_fails_on_a_bad_key(fake_upstream, anthropic_at):
    body = {"type": "error", "error": {"type": "authentication_error",
                                       "message": "invalid x-api-key"}}
    upstream = await fake_upstream({"GET /v1/models": (401, body)})
    with pytest.raises(UpstreamError) as info:
        await anthropic_at(upstream).check_health()
    assert (info.value.status, info.value.upstream_status) == (502, 401)


def test_key_and_base_url_come_from_the_environment():
    provider = make_provider("anthropic", {}, None, env={
        "ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/v1"})
    assert provider.headers["x-api-key"] == "sk-ant-env"
    assert provider.messages_url == "http://127.0.0.1:9/v1/messages"  # no doubled /v1


def test_without_a_key_it_is_not_configured():
    with pytest.raises(AssertionError, match="unconfigured"):
        make_provider("anthropic", {}, None, env={})


def test_default_base_url_serves_claude_models_only():
    provider = make_provider("anthropic", {"api_key": "k"}, None)
    assert provider.messages_url == "https://api.anthropic.com/v1/messages"
    assert provider.supports_model("claude-haiku-4-5")
    assert not provider.supports_model("gpt-4o")
    custom = make_provider("anthropic", {"api_key": "k", "base_url": "http://127.0.0.1:9"}, None)
    assert custom.supports_model("kimi-k2")  # an Anthropic-compatible server's own names
    listed = make_provider("anthropic", {"api_key": "k", "base_url": "http://127.0.0.1:9",
                                         "models": ["claude-x"]}, None)
    assert not listed.supports_model("kimi-k2")
