import pytest
from ferro import ChatRequest, InvalidRequestError, UpstreamError
from ferro.testing import ProviderContract, collect, make_provider, sse_body

MODEL = "llama-3.3-70b-versatile"


def chunk(delta, finish=None, **extra):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def usage(prompt, completion):
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


class TestGroqContract(ProviderContract):
    provider_type = "groq"
    upstream_path = "/openai/v1/chat/completions"
    model = MODEL

    def settings(self, base_url):
        return {"api_key": "test-key", "base_url": base_url + "/openai/v1"}

    def native_reply(self, text, prompt_tokens, completion_tokens):
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": usage(prompt_tokens, completion_tokens),
                "x_groq": {"id": "req_01"}}

    def native_stream(self, parts, prompt_tokens, completion_tokens):
        events = [chunk({"role": "assistant", "content": ""}, x_groq={"id": "req_01"})]
        events += [chunk({"content": p}) for p in parts]
        events.append(chunk({}, "stop", x_groq={"id": "req_01",
                                                "usage": usage(prompt_tokens,
                                                               completion_tokens)}))
        events.append({**chunk({}), "choices": [],
                       "usage": usage(prompt_tokens, completion_tokens)})
        return sse_body(*events, b"[DONE]")

    def native_truncated_stream(self, parts):
        return sse_body(chunk({"role": "assistant", "content": ""}), chunk({"content": parts[0]}))


@pytest.fixture
def groq_at(http_session):
    return lambda upstream: make_provider(
        "groq", {"api_key": "k", "base_url": upstream.url + "/openai/v1"}, http_session)


async def test_x_groq_error_mid_stream_is_raised(fake_upstream, groq_at):
    body = sse_body(chunk({"content": "Hel"}),
                    chunk({}, x_groq={"id": "req_1", "error": "stream stopped: over capacity"}))
    upstream = await fake_upstream({"POST /openai/v1/chat/completions": body})
    provider = groq_at(upstream)
    with pytest.raises(UpstreamError, match="over capacity") as info:
        await collect(provider.stream(ChatRequest({"model": MODEL, "stream": True, "messages": [
            {"role": "user", "content": "x"}]})))
    assert info.value.retryable


async def test_flex_capacity_498_becomes_a_retryable_503(fake_upstream, groq_at):
    err = {"error": {"message": "flex tier capacity exceeded", "type": "capacity_exceeded"}}
    upstream = await fake_upstream({"POST /openai/v1/chat/completions": (498, err)})
    provider = groq_at(upstream)
    with pytest.raises(UpstreamError) as info:
        await provider.chat(ChatRequest({"model": MODEL, "messages": [
            {"role": "user", "content": "x"}], "service_tier": "flex"}))
    assert info.value.status == 503
    assert info.value.retryable
    assert info.value.code == "upstream_overloaded"


async def test_refusal_happens_before_any_upstream_call(fake_upstream, groq_at):
    upstream = await fake_upstream({"POST /openai/v1/chat/completions": {}})
    provider = groq_at(upstream)
    with pytest.raises(InvalidRequestError, match="n=3"):
        await provider.chat(ChatRequest({"model": MODEL, "n": 3, "messages": [
            {"role": "user", "content": "x"}]}))
    assert upstream.requests == []


def test_key_base_url_and_defaults_from_the_environment():
    provider = make_provider("groq", {}, None, env={"GROQ_API_KEY": "gsk-env"})
    assert provider.headers["Authorization"] == "Bearer gsk-env"
    assert provider.chat_url(MODEL) == "https://api.groq.com/openai/v1/chat/completions"
    assert provider.models_url() == "https://api.groq.com/openai/v1/models"
    other = make_provider("groq", {}, None, env={"GROQ_API_KEY": "k",
                                                 "GROQ_BASE_URL": "http://proxy/openai/v1/"})
    assert other.chat_url(MODEL) == "http://proxy/openai/v1/chat/completions"
    assert provider.supports_model("moonshotai/kimi-k2-instruct")  # Groq serves any model
