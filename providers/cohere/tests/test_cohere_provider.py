"""The Cohere provider against a local fake of Cohere's native API (the contract tests, and
what only the I/O layer does: framing, statuses, model discovery, configuration)."""

import orjson
import pytest
from aiohttp import web
from ferro import ChatRequest, ConfigError, InvalidRequestError, UpstreamError
from ferro.testing import ProviderContract, collect, make_provider, sse_body


def cohere_sse(*events):
    """Cohere's SSE framing: ``event: <type>`` plus the JSON event (which repeats the type)."""
    return sse_body(*events, event_names=[e.get("type") for e in events])


def message_end(prompt_tokens, completion_tokens, reason="COMPLETE"):
    return {"type": "message-end", "delta": {"finish_reason": reason, "usage": {
        "billed_units": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        "tokens": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens}}}}


def text_events(parts):
    return [{"id": "gen-1", "type": "message-start",
             "delta": {"message": {"role": "assistant"}}},
            {"type": "content-start", "index": 0,
             "delta": {"message": {"content": {"type": "text", "text": ""}}}},
            *({"type": "content-delta", "index": 0,
               "delta": {"message": {"content": {"text": p}}}} for p in parts)]


class TestCohereContract(ProviderContract):
    provider_type = "cohere"
    upstream_path = "/v2/chat"
    model = "command-r-plus-08-2024"

    def native_reply(self, text, prompt_tokens, completion_tokens):
        return {"id": "gen-1", "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                "usage": {"billed_units": {"input_tokens": prompt_tokens,
                                           "output_tokens": completion_tokens},
                          "tokens": {"input_tokens": prompt_tokens,
                                     "output_tokens": completion_tokens}}}

    def native_stream(self, parts, prompt_tokens, completion_tokens):
        return cohere_sse(*text_events(parts), {"type": "content-end", "index": 0},
                          message_end(prompt_tokens, completion_tokens))

    def native_truncated_stream(self, parts):
        return cohere_sse(*text_events(parts[:1]))

    def native_error(self, status, message):
        return {"id": "err-1", "message": message}


@pytest.fixture
def cohere_at(http_session):
    """``cohere_at(upstream, **settings)``: a Cohere provider pointed at a fake upstream."""
    return lambda upstream, **kw: make_provider(
        "cohere", {"api_key": "k", "base_url": upstream.url, **kw}, http_session)


def ask(**fields):
    return ChatRequest({"model": "command-a-03-2025",
                        "messages": [{"role": "user", "content": "hi"}], **fields})


async def test_request_is_translated_and_authenticated(fake_upstream, cohere_at):
    reply = {"id": "g", "finish_reason": "COMPLETE",
             "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}}
    upstream = await fake_upstream({"POST /v2/chat": reply})
    provider = cohere_at(upstream, model_map={"fast": "command-r7b-12-2024"},
                         safety_mode="STRICT")
    response = await provider.chat(ChatRequest({
        "model": "fast", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "hi"}],
        "max_tokens": 5, "top_p": 0.5, "user": "u-1"}))
    sent = upstream.requests[0]
    assert sent.headers["Authorization"] == "Bearer k"
    assert sent.json() == {
        "model": "command-r7b-12-2024", "stream": False, "max_tokens": 5, "p": 0.5,
        "safety_mode": "STRICT",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hi"}]}
    assert response.body["model"] == "command-r7b-12-2024"
    assert response.body["choices"][0]["message"]["content"] == "ok"
    assert "usage" not in response.body  # Cohere sent none: nothing is made up


async def test_refused_fields_never_reach_cohere(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/chat": {}})
    provider = cohere_at(upstream)
    with pytest.raises(InvalidRequestError) as info:
        await provider.chat(ask(n=3))
    assert info.value.status == 400
    assert upstream.requests == []


async def test_stream_asks_for_sse_and_ends_at_message_end(fake_upstream, cohere_at):
    body = cohere_sse(*text_events(["a", "b"]), message_end(4, 2))
    upstream = await fake_upstream({"POST /v2/chat": body})
    chunks = await collect(cohere_at(upstream).stream(ask(stream=True)))
    sent = upstream.requests[0]
    assert sent.json()["stream"] is True
    assert sent.headers["Accept"] == "text/event-stream"
    assert "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if c["choices"]) == "ab"
    assert chunks[-1]["usage"]["prompt_tokens"] == 4


async def test_newline_delimited_stream_is_read_too(fake_upstream, cohere_at):
    events = [*text_events(["x", "y"]), message_end(1, 2)]

    async def ndjson(request):
        return web.Response(body=b"\n".join(orjson.dumps(e) for e in events) + b"\n",
                            content_type="application/stream+json")

    upstream = await fake_upstream({"POST /v2/chat": ndjson})
    chunks = await collect(cohere_at(upstream).stream(ask(stream=True)))
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 2


async def test_mid_stream_failure_is_an_error_not_a_finish(fake_upstream, cohere_at):
    body = cohere_sse(*text_events(["par"]), {"type": "message-end", "delta": {
        "finish_reason": "ERROR", "error": "model crashed"}})
    upstream = await fake_upstream({"POST /v2/chat": body})
    got = []
    with pytest.raises(UpstreamError, match="model crashed") as info:
        async for chunk in cohere_at(upstream).stream(ask(stream=True)):
            got.append(chunk.as_dict())
    assert info.value.status == 502
    assert not any(c["choices"] and c["choices"][0]["finish_reason"] for c in got)


async def test_invalid_json_event_is_a_502(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/chat": b"event: content-delta\ndata: {oops\n\n"})
    with pytest.raises(UpstreamError) as info:
        await collect(cohere_at(upstream).stream(ask(stream=True)))
    assert info.value.status == 502


@pytest.mark.parametrize(("cohere_status", "status", "retryable"), [
    (400, 400, False), (401, 502, False), (402, 502, False), (403, 502, False),
    (404, 404, False), (422, 422, False), (429, 429, True), (498, 400, False),
    (499, 502, True), (500, 500, True), (503, 503, True), (504, 504, True),
])
async def test_error_statuses(fake_upstream, cohere_at, cohere_status, status, retryable):
    upstream = await fake_upstream({"POST /v2/chat": (
        cohere_status, {"id": "e", "message": f"failure {cohere_status}"})})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).chat(ask())
    assert (info.value.status, info.value.retryable) == (status, retryable)
    assert f"failure {cohere_status}" in info.value.message


async def test_too_many_tokens_is_a_context_length_error(fake_upstream, cohere_at):
    message = ("too many tokens: total number of tokens in the prompt cannot exceed 4081 - "
               "received 4292. Try using a shorter prompt.")
    upstream = await fake_upstream({"POST /v2/chat": (400, {"message": message})})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).chat(ask())
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"


async def test_models_are_discovered_across_pages(fake_upstream, cohere_at):
    async def models(request):
        if request.query.get("page_token") == "p2":
            return web.json_response({"models": [
                {"name": "command-a-vision-07-2025", "endpoints": ["chat"]}]})
        return web.json_response({"models": [
            {"name": "command-z", "endpoints": ["generate", "chat"]},
            {"name": "embed-v4.0", "endpoints": ["embed"]}], "next_page_token": "p2"})

    upstream = await fake_upstream({"GET /v1/models": models})
    provider = cohere_at(upstream)
    names = [m.id for m in await provider.list_models()]
    assert "command-z" in names and "command-a-vision-07-2025" in names
    assert "embed-v4.0" in names
    assert "command-a-03-2025" not in names  # what the API reports replaces the defaults
    assert "endpoint" not in upstream.requests[0].query
    assert upstream.requests[0].headers["Authorization"] == "Bearer k"
    await provider.list_models()
    assert len(upstream.requests) == 2  # cached: no third request


async def test_health_check_fails_on_a_bad_key(fake_upstream, cohere_at):
    upstream = await fake_upstream({"GET /v1/models": (401, {"message": "invalid api token"})})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).check_health()
    assert (info.value.status, info.value.upstream_status) == (502, 401)


def test_key_and_base_url_come_from_the_environment():
    provider = make_provider("cohere", {}, None, env={
        "COHERE_API_KEY": "co-env", "COHERE_BASE_URL": "http://127.0.0.1:9/"})
    assert provider.headers["Authorization"] == "Bearer co-env"
    assert provider.chat_url == "http://127.0.0.1:9/v2/chat"


def test_defaults_and_model_families():
    provider = make_provider("cohere", {}, None, env={"COHERE_API_KEY": "k"})
    assert provider.chat_url == "https://api.cohere.com/v2/chat"
    assert provider.supports_model("command-a-03-2025")
    assert provider.supports_model("c4ai-aya-expanse-32b")
    assert not provider.supports_model("gpt-4o")


def test_unknown_safety_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="safety_mode"):
        make_provider("cohere", {"api_key": "k", "safety_mode": "LOOSE"}, None)
