import pytest
from ferro import ChatRequest, UpstreamError
from ferro.testing import OpenAICompatibleContract, collect, make_provider, sse_body

MODEL = "deepseek-reasoner"


class TestDeepSeekContract(OpenAICompatibleContract):
    provider_type = "deepseek"
    upstream_path = "/chat/completions"  # DeepSeek's base URL has no /v1
    model = MODEL
    response_id = "930c"
    message_fields = {"reasoning_content": "Thinking..."}
    choice_fields = {"logprobs": None}
    chunk_fields = {"system_fingerprint": "fp_1"}
    # the reasoning streams first, in its own field beside the content
    opening_deltas = ({"role": "assistant", "content": None, "reasoning_content": ""},
                      {"content": None, "reasoning_content": "Hmm"})
    delta_fields = {"reasoning_content": None}
    finish_delta = {"content": ""}

    def usage(self, prompt_tokens, completion_tokens):
        hit = 4
        return {**super().usage(prompt_tokens, completion_tokens),
                "prompt_cache_hit_tokens": hit, "prompt_cache_miss_tokens": prompt_tokens - hit,
                "completion_tokens_details": {"reasoning_tokens": 1}}


chunk = TestDeepSeekContract().chunk


@pytest.fixture
def deepseek_at(http_session):
    return lambda upstream: make_provider(
        "deepseek", {"api_key": "k", "base_url": upstream.url}, http_session)


REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "9.11 or 9.8?"}]}


async def test_reasoning_content_and_cache_hits_reach_the_client(fake_upstream, deepseek_at):
    reply = TestDeepSeekContract().native_reply("9.8", 10, 5)
    upstream = await fake_upstream({"POST /chat/completions": reply})
    response = await deepseek_at(upstream).chat(ChatRequest(dict(REQUEST)))
    assert response.body["choices"][0]["message"]["reasoning_content"] == "Thinking..."
    assert response.usage.cached_tokens == 4
    assert response.usage.reasoning_tokens == 1
    assert response.usage.prompt_tokens == 10


async def test_streamed_reasoning_and_cache_hits(fake_upstream, deepseek_at):
    body = TestDeepSeekContract().native_stream(("9.8",), 10, 5)
    upstream = await fake_upstream({"POST /chat/completions": body})
    chunks = await collect(deepseek_at(upstream).stream(ChatRequest({**REQUEST, "stream": True})))
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                        for c in chunks if c["choices"])
    assert reasoning == "Hmm"
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert upstream.requests[0].json()["stream_options"] == {"include_usage": True}


async def test_insufficient_system_resource_is_a_retryable_error(fake_upstream, deepseek_at):
    body = sse_body(chunk({"content": "9."}), chunk({}, "insufficient_system_resource"),
                    b"[DONE]")
    upstream = await fake_upstream({"POST /chat/completions": body})
    with pytest.raises(UpstreamError) as info:
        await collect(deepseek_at(upstream).stream(ChatRequest({**REQUEST, "stream": True})))
    assert info.value.status == 503 and info.value.retryable

    reply = TestDeepSeekContract().native_reply("9.", 10, 1)
    reply["choices"][0]["finish_reason"] = "insufficient_system_resource"
    upstream = await fake_upstream({"POST /chat/completions": reply})
    with pytest.raises(UpstreamError, match="ran out of capacity"):
        await deepseek_at(upstream).chat(ChatRequest(dict(REQUEST)))


def test_defaults_and_environment():
    provider = make_provider("deepseek", {}, None, env={"DEEPSEEK_API_KEY": "sk-ds"})
    assert provider.chat_url(MODEL) == "https://api.deepseek.com/chat/completions"
    assert provider.models_url() == "https://api.deepseek.com/models"
    assert provider.headers["Authorization"] == "Bearer sk-ds"
    assert provider.supports_model("deepseek-v4-pro")
    assert not provider.supports_model("gpt-4o")
