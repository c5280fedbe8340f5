import pytest
from ferro import ChatRequest, UpstreamError
from ferro.testing import OpenAICompatibleContract, collect, make_provider, sse_body

MODEL = "mistral-small-latest"


class TestMistralContract(OpenAICompatibleContract):
    provider_type = "mistral"
    upstream_path = "/v1/chat/completions"
    model = MODEL
    response_id = "cmpl-e5c"
    message_fields = {"tool_calls": None}
    # Mistral ends a stream with one chunk: an empty content delta, the finish and usage.
    finish_delta = {"content": ""}
    usage_on_finish_chunk = True

    def native_error(self, status, message):
        return {"object": "error", "message": message, "type": "invalid_request_error",
                "param": None, "code": None}


_contract = TestMistralContract()
chunk, usage = _contract.chunk, _contract.usage


def reply(content, finish="stop"):
    return _contract.native_reply(content, 3, 2, finish_reason=finish)


@pytest.fixture
def mistral_at(http_session):
    return lambda upstream: make_provider(
        "mistral", {"api_key": "k", "base_url": upstream.url + "/v1"}, http_session)


REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}


async def test_model_length_finish_becomes_length(fake_upstream, mistral_at):
    upstream = await fake_upstream({"POST /v1/chat/completions": reply("partial",
                                                                       "model_length")})
    response = await mistral_at(upstream).chat(ChatRequest(dict(REQUEST)))
    assert response.body["choices"][0]["finish_reason"] == "length"


async def test_streamed_model_length_and_error_finishes(fake_upstream, mistral_at):
    good = sse_body(chunk({"content": "a"}), chunk({}, "model_length", usage=usage(1, 1)),
                    b"[DONE]")
    upstream = await fake_upstream({"POST /v1/chat/completions": good})
    got = await collect(mistral_at(upstream).stream(ChatRequest({**REQUEST, "stream": True})))
    assert got[-1]["choices"][0]["finish_reason"] == "length"
    assert got[-1]["usage"] == usage(1, 1)
    assert "stream_options" not in upstream.requests[0].json()

    bad = sse_body(chunk({"content": "a"}), chunk({}, "error"), b"[DONE]")
    upstream = await fake_upstream({"POST /v1/chat/completions": bad})
    with pytest.raises(UpstreamError, match="finish_reason 'error'"):
        await collect(mistral_at(upstream).stream(ChatRequest({**REQUEST, "stream": True})))


async def test_error_body_mid_stream_is_raised(fake_upstream, mistral_at):
    body = sse_body(chunk({"content": "a"}), {"object": "error", "message": "Service overloaded",
                                              "type": "service_unavailable", "code": "1000"})
    upstream = await fake_upstream({"POST /v1/chat/completions": body})
    with pytest.raises(UpstreamError, match="Service overloaded"):
        await collect(mistral_at(upstream).stream(ChatRequest({**REQUEST, "stream": True})))


async def test_schema_rejection_is_a_400_that_names_the_field(fake_upstream, mistral_at):
    err = {"object": "error", "message": {"detail": [
        {"type": "extra_forbidden", "loc": ["body", "web_search_options"],
         "msg": "Extra inputs are not permitted", "input": {}}]},
        "type": "invalid_request_error", "param": None, "code": None}
    upstream = await fake_upstream({"POST /v1/chat/completions": (422, err)})
    with pytest.raises(UpstreamError) as info:
        await mistral_at(upstream).chat(ChatRequest({**REQUEST, "web_search_options": {}}))
    assert info.value.status == 400
    assert "body.web_search_options: Extra inputs are not permitted" in info.value.message


async def test_context_window_error_is_classified(fake_upstream, mistral_at):
    err = {"object": "error", "message": "Prompt contains 140000 tokens and 0 draft tokens, too "
           "large for model with 131072 maximum context length", "type": "invalid_request_error",
           "param": None, "code": None}
    upstream = await fake_upstream({"POST /v1/chat/completions": (400, err)})
    with pytest.raises(UpstreamError) as info:
        await mistral_at(upstream).chat(ChatRequest(dict(REQUEST)))
    assert info.value.code == "context_length_exceeded"


def test_serves_mistral_model_families_only():
    provider = make_provider("mistral", {}, None, env={"MISTRAL_API_KEY": "mk"})
    assert provider.chat_url(MODEL) == "https://api.mistral.ai/v1/chat/completions"
    assert provider.headers["Authorization"] == "Bearer mk"
    for model in ("mistral-large-latest", "codestral-2508", "magistral-medium-2509",
                  "devstral-medium-2507", "open-mistral-nemo", "pixtral-large-latest",
                  "ministral-8b-latest"):
        assert provider.supports_model(model), model
    assert not provider.supports_model("gpt-4o")
    assert not provider.supports_model("deepseek-chat")
