import pytest
from ferro import ChatRequest, InvalidRequestError, UpstreamError
from ferro.testing import OpenAICompatibleContract, collect, make_provider, sse_body

MODEL = "llama-3.3-70b-versatile"
X_GROQ = {"x_groq": {"id": "req_01"}}


class TestGroqContract(OpenAICompatibleContract):
    provider_type = "groq"
    upstream_path = "/openai/v1/chat/completions"
    model = MODEL
    reply_fields = X_GROQ
    first_chunk_fields = X_GROQ

    def finish_chunk_fields(self, usage):
        # Groq repeats the usage in the finish chunk's x_groq, besides the usage chunk.
        return {"x_groq": {"id": "req_01", "usage": usage}}


chunk = TestGroqContract().chunk


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
