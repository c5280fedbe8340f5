import pytest
from ferro import UpstreamError
from ferro.testing import OpenAICompatibleContract, make_provider

MODEL = "llama3.2"


class TestOllamaContract(OpenAICompatibleContract):
    provider_type = "ollama"
    upstream_path = "/v1/chat/completions"
    model = MODEL
    response_id = "chatcmpl-290"
    reply_fields = chunk_fields = {"system_fingerprint": "fp_ollama"}
    # no role chunk: every delta carries the role, the finish delta too
    opening_deltas = ()
    delta_fields = {"role": "assistant"}
    finish_delta = {"content": ""}
    error_type = "api_error"

    def settings(self, base_url):
        return {"base_url": base_url}  # no key: a local server

    def check_auth(self, request):
        assert "Authorization" not in request.headers


@pytest.fixture
def ollama_at(http_session):
    return lambda upstream: make_provider("ollama", {"base_url": upstream.url}, http_session)


async def test_models_come_from_api_tags(fake_upstream, ollama_at):
    upstream = await fake_upstream({"GET /api/tags": {"models": [
        {"name": "mistral-nemo:12b", "model": "mistral-nemo:12b", "size": 7}]}})
    ids = [m.id for m in await ollama_at(upstream).list_models()]
    assert "mistral-nemo:12b" in ids
    assert upstream.requests[0].path == "/api/tags"


async def test_health_asks_api_version(fake_upstream, ollama_at):
    upstream = await fake_upstream({"GET /api/version": {"version": "0.12.6"}})
    await ollama_at(upstream).check_health()
    assert [r.path for r in upstream.requests] == ["/api/version"]
    down = await fake_upstream({"GET /api/version": (500, {"error": "boom"})})
    with pytest.raises(UpstreamError):
        await ollama_at(down).check_health()


def test_configured_only_by_ollama_host():
    cls = type(make_provider("ollama", {}, None))
    assert not cls.configured_in({})
    assert not cls.configured_in({"OPENAI_API_KEY": "x"})
    assert cls.configured_in({"OLLAMA_HOST": "0.0.0.0:11434"})


def test_host_comes_from_the_environment_and_no_key_is_needed():
    local = make_provider("ollama", {}, None)
    assert local.chat_url(MODEL) == "http://localhost:11434/v1/chat/completions"
    assert "Authorization" not in local.headers
    remote = make_provider("ollama", {}, None, env={"OLLAMA_HOST": "gpu-box"})
    assert remote.chat_url(MODEL) == "http://gpu-box:11434/v1/chat/completions"
    assert remote.models_url() == "http://gpu-box:11434/api/tags"
    assert remote.supports_model("any-model:7b")
    keyed = make_provider("ollama", {"api_key": "proxy-key"}, None)
    assert keyed.headers["Authorization"] == "Bearer proxy-key"
