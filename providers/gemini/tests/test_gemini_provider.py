"""The Gemini provider against a local fake of the Gemini API (the kernel's contract, and
what is Gemini's own: URLs, the key header, streams, errors, model discovery)."""

import aiohttp
import pytest
from aiohttp import web
from ferro import ChatRequest, InvalidRequestError, UpstreamError
from ferro.testing import ProviderContract, collect, make_provider, sse_body

MODEL = "gemini-2.5-flash"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE"}


def gemini_chunk(parts, finish=None, usage=None, response_id="resp-1"):
    candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out = {"candidates": [candidate], "modelVersion": MODEL, "responseId": response_id}
    if usage:
        out["usageMetadata"] = usage
    return out


def usage(prompt, completion, **extra):
    return {"promptTokenCount": prompt, "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion + extra.get("thoughtsTokenCount", 0),
            **extra}


class TestGeminiContract(ProviderContract):
    provider_type = "gemini"
    upstream_path = "/v1beta/models/{call}"
    model = MODEL

    def native_reply(self, text, prompt_tokens, completion_tokens):
        return gemini_chunk([{"text": text}], "STOP", usage(prompt_tokens, completion_tokens))

    def native_stream(self, parts, prompt_tokens, completion_tokens):
        events = [gemini_chunk([{"text": p}], usage=usage(prompt_tokens, 0)) for p in parts]
        events[-1] = gemini_chunk([{"text": parts[-1]}], "STOP",
                                  usage(prompt_tokens, completion_tokens))
        return sse_body(*events)

    def native_truncated_stream(self, parts):
        return sse_body(*[gemini_chunk([{"text": p}]) for p in parts[:2]])

    def native_error(self, status, message):
        return {"error": {"code": status, "message": message,
                          "status": STATUS_NAMES.get(status, "UNKNOWN")}}

    def check_auth(self, request):
        assert request.headers.get("x-goog-api-key") == "test-key"
        assert "key" not in request.query, "the key must never be in the URL"
        assert "Authorization" not in request.headers


@pytest.fixture
def gemini_at(http_session):
    """``gemini_at(upstream, **settings)``: a Gemini provider pointed at a fake upstream."""
    return lambda upstream, **kw: make_provider(
        "gemini", {"api_key": "k", "base_url": upstream.url, **kw}, http_session)


def request(**body):
    return ChatRequest({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                        **body})


async def test_urls_method_and_alt_sse(fake_upstream, gemini_at):
    upstream = await fake_upstream({
        "POST /v1beta/models/{call}": _dispatch,
    })
    provider = gemini_at(upstream)
    await provider.chat(request())
    await collect(provider.stream(request(stream=True)))
    chat, stream = upstream.requests
    assert chat.path == f"/v1beta/models/{MODEL}:generateContent"
    assert chat.query == {}
    assert stream.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert stream.query == {"alt": "sse"}
    assert chat.json() == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def _dispatch(req):
    if req.path.endswith(":streamGenerateContent"):
        return web.Response(body=sse_body(gemini_chunk([{"text": "ok"}], "STOP")),
                            content_type="text/event-stream")
    return web.json_response(gemini_chunk([{"text": "ok"}], "STOP"))


async def test_model_map_and_base_url_with_version(fake_upstream, gemini_at):
    upstream = await fake_upstream({"POST /v1beta/models/{call}": gemini_chunk(
        [{"text": "ok"}], "STOP")})
    provider = make_provider("gemini", {"api_key": "k", "base_url": upstream.url + "/v1beta",
                                        "model_map": {"fast": "gemini-2.5-flash-lite"}}, None)
    async with aiohttp.ClientSession() as session:
        provider.session = session
        response = await provider.chat(ChatRequest({"model": "fast", "messages": [
            {"role": "user", "content": "x"}]}))
    assert upstream.requests[0].path == "/v1beta/models/gemini-2.5-flash-lite:generateContent"
    assert response.body["model"] == "fast"


async def test_streamed_tool_calls_reach_the_client_indexed(fake_upstream, gemini_at):
    body = sse_body(
        gemini_chunk([{"text": "Let me check."}]),
        gemini_chunk([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                       "thoughtSignature": "c2ln"},
                      {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}],
                     "STOP", usage(9, 12, thoughtsTokenCount=4, cachedContentTokenCount=2)))
    upstream = await fake_upstream({"POST /v1beta/models/{call}": body})
    provider = gemini_at(upstream)
    chunks = await collect(provider.stream(request(stream=True)))
    calls = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for tc in choice["delta"].get("tool_calls") or ():
                slot = calls.setdefault(tc["index"], {"id": None, "name": "", "args": ""})
                if tc.get("id"):
                    assert slot["args"] == "", "id and name come before the arguments"
                    slot["id"] = tc["id"]
                    slot["name"] += tc["function"]["name"]
                slot["args"] += tc["function"].get("arguments") or ""
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"]
    assert [c["args"] for c in calls.values()] == ['{"city":"Paris"}', '{"tz":"CET"}']
    assert all(c["id"] for c in calls.values())
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                if ch["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 4}}


async def test_mid_stream_error_event_is_raised(fake_upstream, gemini_at):
    body = sse_body(gemini_chunk([{"text": "a"}]),
                    {"error": {"code": 503, "message": "The model is overloaded.",
                               "status": "UNAVAILABLE"}})
    upstream = await fake_upstream({"POST /v1beta/models/{call}": body})
    with pytest.raises(UpstreamError, match="overloaded") as info:
        await collect(gemini_at(upstream).stream(request(stream=True)))
    assert info.value.status == 503
    assert info.value.retryable


async def test_stream_cut_before_finish_reason_is_an_error_not_a_short_answer(
        fake_upstream, gemini_at):
    body = sse_body(gemini_chunk([{"text": "The answer is"}], usage=usage(3, 1)))
    upstream = await fake_upstream({"POST /v1beta/models/{call}": body})
    with pytest.raises(UpstreamError) as info:
        await collect(gemini_at(upstream).stream(request(stream=True)))
    assert info.value.code == "stream_truncated"
    assert "finishReason" in info.value.message


async def test_a_bad_key_is_refused_credentials_even_though_gemini_says_400(fake_upstream,
                                                                           gemini_at):
    error = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                       "status": "INVALID_ARGUMENT", "details": [
                           {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}
    upstream = await fake_upstream({"POST /v1beta/models/{call}": (400, error)})
    with pytest.raises(UpstreamError) as info:
        await gemini_at(upstream).chat(request())
    assert (info.value.status, info.value.upstream_status) == (502, 401)
    assert info.value.code == "upstream_auth_error"
    assert "API key not valid" in info.value.message


async def test_quota_error_passes_retry_delay_on_as_retry_after(fake_upstream, gemini_at):
    error = {"error": {"code": 429, "message": "You exceeded your current quota.",
                       "status": "RESOURCE_EXHAUSTED", "details": [
                           {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "21s"}]}}
    upstream = await fake_upstream({"POST /v1beta/models/{call}": (429, error)})
    with pytest.raises(UpstreamError) as info:
        await gemini_at(upstream).chat(request())
    assert info.value.status == 429
    assert info.value.retryable
    assert info.value.headers["Retry-After"] == "21"


async def test_context_window_error_is_classified(fake_upstream, gemini_at):
    error = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                       "The input token count (2000000) exceeds the maximum number of tokens "
                       "allowed (1048576)."}}
    upstream = await fake_upstream({"POST /v1beta/models/{call}": (400, error)})
    with pytest.raises(UpstreamError) as info:
        await gemini_at(upstream).chat(request())
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"


async def test_refusals_happen_before_any_upstream_call(fake_upstream, gemini_at):
    upstream = await fake_upstream({"POST /v1beta/models/{call}": gemini_chunk([], "STOP")})
    provider = gemini_at(upstream)
    with pytest.raises(InvalidRequestError):
        await provider.chat(request(logit_bias={"1": 2}))
    with pytest.raises(InvalidRequestError):
        await collect(provider.stream(request(stream=True, logprobs=True)))
    assert upstream.requests == []


async def test_options_reach_the_request(fake_upstream, gemini_at):
    upstream = await fake_upstream({"POST /v1/models/{call}": gemini_chunk(
        [{"text": "ok"}], "STOP")})
    safety = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}]
    provider = gemini_at(upstream, api_version="v1", safety_settings=safety)
    await provider.chat(request())
    assert upstream.requests[0].path == f"/v1/models/{MODEL}:generateContent"
    assert upstream.requests[0].json()["safetySettings"] == safety


def test_unknown_option_is_a_config_error():
    from ferro import ConfigError
    with pytest.raises(ConfigError, match="schema_mod"):
        make_provider("gemini", {"api_key": "k", "schema_mod": "json_schema"}, None)


async def test_models_are_discovered_across_pages_and_filtered(fake_upstream, gemini_at):
    pages = {
        None: {"models": [
            {"name": "models/gemini-2.5-pro", "supportedGenerationMethods":
             ["generateContent", "countTokens"]},
            {"name": "models/text-embedding-004", "supportedGenerationMethods":
             ["embedContent"]}], "nextPageToken": "p2"},
        "p2": {"models": [{"name": "models/gemma-3-27b-it", "supportedGenerationMethods":
                           ["generateContent"]}]},
    }

    async def models(req):
        return web.json_response(pages[req.query.get("pageToken")])

    upstream = await fake_upstream({"GET /v1beta/models": models})
    provider = gemini_at(upstream)
    ids = [m.id for m in await provider.list_models()]
    assert "gemini-2.5-pro" in ids and "gemma-3-27b-it" in ids
    assert "text-embedding-004" in ids
    assert "gemini-2.0-flash" not in ids  # what the API reports replaces the defaults
    assert len(upstream.requests) == 2
    assert all(r.headers["x-goog-api-key"] == "k" and "key" not in r.query
               for r in upstream.requests)
    await provider.list_models()
    assert len(upstream.requests) == 2  # cached
    await provider.check_health()


def test_environment_and_model_families():
    provider = make_provider("gemini", {}, None,
                             env={"GEMINI_API_KEY": "g-env", "GEMINI_BASE_URL": "http://x"})
    assert provider.headers["x-goog-api-key"] == "g-env"
    assert provider.api_url == "http://x/v1beta"
    assert provider.supports_model("gemini-2.5-flash")
    assert provider.supports_model("gemma-3-27b-it")
    assert provider.supports_model("models/gemini-2.0-flash")
    assert provider.supports_model("gpt-4o")  # a custom base URL: its names are its own
    default = make_provider("gemini", {"api_key": "k"}, None)
    assert default.api_url == "https://generativelanguage.googleapis.com/v1beta"
    assert default.supports_model("gemini-2.5-flash")
    assert not default.supports_model("gpt-4o")


@pytest.mark.parametrize("model", ["gemini-x/../../files", "gemini-a b", "gemini-x:stream"])
async def test_model_names_cannot_reach_other_endpoints(fake_upstream, gemini_at, model):
    upstream = await fake_upstream({"POST /v1beta/models/{call}": gemini_chunk([], "STOP")})
    with pytest.raises(InvalidRequestError):
        await gemini_at(upstream).chat(request(model=model))
    assert upstream.requests == []
