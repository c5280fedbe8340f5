import pytest
from ferro import ChatRequest
from ferro.testing import OpenAICompatibleContract, collect, make_provider, sse_body

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


class TestTogetherContract(OpenAICompatibleContract):
    """Together's stream: no role chunk, ``role`` in every delta, ``usage`` null until the
    last chunk, which also carries the finish reason (``eos``)."""

    provider_type = "together"
    upstream_path = "/v1/chat/completions"
    model = MODEL
    response_id = "8f3"
    finish_reason = "eos"
    reply_fields = {"prompt": []}
    message_fields = {"tool_calls": []}
    choice_fields = {"logprobs": None}
    chunk_fields = {"usage": None}
    opening_deltas = ()
    delta_fields = {"role": "assistant"}
    finish_on_last_content = True
    usage_on_finish_chunk = True


_contract = TestTogetherContract()
chunk, usage = _contract.chunk, _contract.usage


@pytest.fixture
def together_at(http_session):
    return lambda upstream: make_provider(
        "together", {"api_key": "k", "base_url": upstream.url + "/v1"}, http_session)


async def test_stream_request_carries_no_stream_options(fake_upstream, together_at):
    body = sse_body(chunk({"content": "hi"}, "stop", usage(1, 1)), b"[DONE]")
    upstream = await fake_upstream({"POST /v1/chat/completions": body})
    provider = together_at(upstream)
    chunks = await collect(provider.stream(ChatRequest({
        "model": MODEL, "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 20, "messages": [{"role": "user", "content": "x"}]})))
    sent = upstream.requests[0].json()
    assert "stream_options" not in sent
    assert sent["max_tokens"] == 20 and "max_completion_tokens" not in sent
    assert chunks[-1]["usage"] == usage(1, 1)
    assert upstream.requests[0].headers["Authorization"] == "Bearer k"


async def test_models_are_discovered_from_the_bare_list(fake_upstream, together_at):
    upstream = await fake_upstream({"GET /v1/models": [
        {"id": "Qwen/Qwen3-235B-A22B-Instruct-2507-tput", "object": "model", "type": "chat"},
        {"id": "BAAI/bge-base-en-v1.5", "object": "model", "type": "embedding"}]})
    provider = together_at(upstream)
    models = {m.id: m.operations for m in await provider.list_models()}
    assert models == {  # what the API reports replaces the defaults
        "Qwen/Qwen3-235B-A22B-Instruct-2507-tput": ("chat", "completions"),
        "BAAI/bge-base-en-v1.5": ("embeddings",)}


def test_defaults_and_environment():
    provider = make_provider("together", {}, None, env={"TOGETHER_API_KEY": "tk"})
    assert provider.chat_url(MODEL) == "https://api.together.xyz/v1/chat/completions"
    assert provider.headers["Authorization"] == "Bearer tk"
    assert provider.supports_model("any-org/any-model")
    moved = make_provider("together", {}, None, env={"TOGETHER_API_KEY": "tk",
                                                     "TOGETHER_BASE_URL": "https://api.together.ai/v1"})
    assert moved.chat_url(MODEL) == "https://api.together.ai/v1/chat/completions"
