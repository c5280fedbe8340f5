import pytest
from ferro import ChatRequest, ConfigError, UpstreamError
from ferro.testing import OpenAICompatibleContract, collect, make_provider

DEPLOYMENT = "gpt-4o-prod"
PATH = f"/openai/deployments/{DEPLOYMENT}/chat/completions"
FILTERS = {"hate": {"filtered": False, "severity": "safe"}}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": FILTERS}]


class TestAzureOpenAIContract(OpenAICompatibleContract):
    provider_type = "azure-openai"
    upstream_path = PATH
    model = "gpt-4o"
    response_id = "chatcmpl-A1"
    served_model = "gpt-4o-2024-08-06"
    reply_fields = {"prompt_filter_results": PROMPT_FILTERS}
    choice_fields = {"content_filter_results": FILTERS}
    chunk_fields = {"system_fingerprint": "fp_1"}
    # Azure opens a stream with a chunk of prompt filter results and no choices.
    stream_preamble = ({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                        "prompt_filter_results": PROMPT_FILTERS},)

    def settings(self, base_url):
        return {"api_key": "test-key", "base_url": base_url, "deployment": DEPLOYMENT}

    def check_auth(self, request):
        assert request.headers.get("api-key") == "test-key"
        assert "Authorization" not in request.headers
        assert request.query == {"api-version": "2024-10-21"}

    def native_error(self, status, message):
        return {"error": {"code": str(status), "message": message}}


@pytest.fixture
def azure_at(http_session):
    return lambda upstream, **extra: make_provider(
        "azure-openai", {"api_key": "k", "base_url": upstream.url, **extra}, http_session)


REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}


async def test_without_a_deployment_the_model_name_is_the_deployment(fake_upstream, azure_at):
    reply = TestAzureOpenAIContract().native_reply("ok", 1, 1)
    upstream = await fake_upstream({"POST /openai/deployments/{name}/chat/completions": reply})
    provider = azure_at(upstream, model_map={"fast": "gpt-4o-mini-eu"})
    await provider.chat(ChatRequest({**REQUEST, "model": "fast"}))
    assert upstream.requests[0].path == "/openai/deployments/gpt-4o-mini-eu/chat/completions"


async def test_content_filter_finish_and_error(fake_upstream, azure_at):
    reply = TestAzureOpenAIContract().native_reply("", 1, 0)
    reply["choices"][0]["finish_reason"] = "content_filter"
    upstream = await fake_upstream({f"POST {PATH}": reply})
    response = await azure_at(upstream, deployment=DEPLOYMENT).chat(ChatRequest(dict(REQUEST)))
    assert response.body["choices"][0]["finish_reason"] == "content_filter"

    err = {"error": {"code": "content_filter", "status": 400,
                     "message": "The response was filtered due to the prompt triggering "
                                "Azure OpenAI's content management policy.",
                     "innererror": {"code": "ResponsibleAIPolicyViolation"}}}
    upstream = await fake_upstream({f"POST {PATH}": (400, err)})
    with pytest.raises(UpstreamError) as info:
        await azure_at(upstream, deployment=DEPLOYMENT).chat(ChatRequest(dict(REQUEST)))
    assert info.value.status == 400 and info.value.code == "content_filter"
    assert "content management policy" in info.value.message


async def test_older_api_versions_get_no_stream_options(fake_upstream, azure_at):
    body = TestAzureOpenAIContract().native_stream(("hi",), 1, 1)
    upstream = await fake_upstream({f"POST {PATH}": body})
    provider = azure_at(upstream, deployment=DEPLOYMENT, api_version="2024-06-01")
    await collect(provider.stream(ChatRequest({**REQUEST, "stream": True,
                                               "stream_options": {"include_usage": True}})))
    assert "stream_options" not in upstream.requests[0].json()
    assert upstream.requests[0].query == {"api-version": "2024-06-01"}


async def test_models_are_the_configured_deployment_and_health_does_no_io(azure_at):
    class Nowhere:
        url = "http://127.0.0.1:9"

    provider = azure_at(Nowhere, deployment=DEPLOYMENT)
    assert [m.id for m in await provider.list_models()] == [DEPLOYMENT]
    await provider.check_health()  # would fail if it touched the unreachable endpoint
    assert [m.id for m in await azure_at(Nowhere).list_models()] == []


def test_options_and_endpoint_from_the_environment():
    env = {"AZURE_OPENAI_API_KEY": "ak", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/",
           "AZURE_OPENAI_DEPLOYMENT": "dep", "AZURE_OPENAI_API_VERSION": "2025-01-01-preview"}
    provider = make_provider("azure-openai", {}, None, env=env)
    assert provider.chat_url("anything") == (
        "https://r.openai.azure.com/openai/deployments/dep/chat/completions"
        "?api-version=2025-01-01-preview")
    assert provider.headers["api-key"] == "ak"
    configured = make_provider("azure-openai", {"deployment": "mine"}, None, env=env)
    assert "/deployments/mine/" in configured.chat_url("x")  # the config file wins
    assert provider.supports_model("whatever-you-deployed")
    cls = type(provider)
    assert cls.configured_in(env)
    assert not cls.configured_in({"AZURE_OPENAI_API_KEY": "ak"})


def test_a_missing_endpoint_is_a_config_error_naming_both_places():
    with pytest.raises(ConfigError) as info:
        make_provider("azure-openai", {"api_key": "k"}, None)
    assert "base_url" in info.value.message and "AZURE_OPENAI_ENDPOINT" in info.value.message


def test_unknown_azure_option_is_a_config_error():
    with pytest.raises(ConfigError, match="deploymnt"):
        make_provider("azure-openai", {"api_key": "k", "base_url": "https://r", "deploymnt": "x"},
                      None)
