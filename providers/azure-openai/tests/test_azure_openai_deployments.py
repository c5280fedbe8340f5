"""Which deployment serves which model and operation: ``deployments`` for every operation,
the one chat ``deployment`` as before, the model name otherwise."""

import pytest
from ferro import ChatRequest, CompletionsRequest, ConfigError, EmbeddingsRequest
from ferro.testing import make_provider
from ferro_provider_azure_openai._wire import deployment_for, deployment_url

ENDPOINT = "https://r.openai.azure.com"
ENV = {"AZURE_OPENAI_API_KEY": "ak", "AZURE_OPENAI_ENDPOINT": ENDPOINT}


def azure(**options):
    return make_provider("azure-openai", {"api_key": "k", "base_url": ENDPOINT, **options},
                         None)


def test_deployment_url_for_each_endpoint():
    assert deployment_url(ENDPOINT, "emb-prod", "/embeddings", "2024-10-21") == (
        f"{ENDPOINT}/openai/deployments/emb-prod/embeddings?api-version=2024-10-21")
    assert deployment_url(ENDPOINT, "a b/c", "/completions", "2025-01-01-preview") == (
        f"{ENDPOINT}/openai/deployments/a%20b%2Fc/completions?api-version=2025-01-01-preview")


@pytest.mark.parametrize(("model", "chat", "expected"), [
    ("gpt-4o", True, "chat-eu"),            # listed: its own deployment
    ("text-embedding-3-small", False, "emb-eu"),
    ("gpt-4o-mini", True, "main"),          # not listed, chat: the one chat deployment
    ("gpt-4o-mini", False, "gpt-4o-mini"),  # not listed, other operations: the model name
])
def test_deployment_choice(model, chat, expected):
    deployments = {"gpt-4o": "chat-eu", "text-embedding-3-small": "emb-eu"}
    assert deployment_for(model, chat=chat, deployments=deployments,
                          chat_deployment="main") == expected
    assert deployment_for("x", chat=chat, deployments={}, chat_deployment=None) == "x"


def test_each_operation_has_the_deployment_of_its_model():
    provider = azure(deployments={"gpt-4o": "chat-eu", "text-embedding-3-large": "emb-eu",
                                  "gpt-35-turbo-instruct": "instruct-eu"},
                     api_version="2024-06-01")
    base = f"{ENDPOINT}/openai/deployments"
    assert provider.chat_url("gpt-4o") == f"{base}/chat-eu/chat/completions?api-version=2024-06-01"
    assert provider.url(provider.embeddings_path, "text-embedding-3-large") == (
        f"{base}/emb-eu/embeddings?api-version=2024-06-01")
    assert provider.url(provider.completions_path, "gpt-35-turbo-instruct") == (
        f"{base}/instruct-eu/completions?api-version=2024-06-01")
    assert provider.url(provider.embeddings_path, "unlisted") == (
        f"{base}/unlisted/embeddings?api-version=2024-06-01")


def test_the_one_chat_deployment_keeps_working_and_stays_with_chat():
    provider = make_provider("azure-openai", {}, None,
                             env={**ENV, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-prod"})
    assert "/deployments/gpt-4o-prod/chat/completions" in provider.chat_url("anything")
    # an embeddings model has a deployment of its own, named like it unless listed
    assert "/deployments/text-embedding-3-small/embeddings" in provider.url(
        "/embeddings", "text-embedding-3-small")
    listed = azure(deployment="gpt-4o-prod", deployments={"gpt-4o-mini": "mini-eu"})
    assert "/deployments/mini-eu/" in listed.chat_url("gpt-4o-mini")  # the list wins
    assert "/deployments/gpt-4o-prod/" in listed.chat_url("gpt-4o")


async def test_requests_go_to_their_deployment_after_the_model_map(fake_upstream, http_session):
    route = "POST /openai/deployments/{deployment}/{path:.+}"
    upstream = await fake_upstream({route: {
        "object": "list", "model": "m", "data": [{"object": "embedding", "index": 0,
                                                  "embedding": [1.0]}],
        "choices": [{"index": 0, "text": "x", "message": {"role": "assistant",
                                                          "content": "x"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1}}})
    provider = make_provider("azure-openai", {
        "api_key": "k", "base_url": upstream.url,
        "model_map": {"embed": "text-embedding-3-small"},
        "deployments": {"text-embedding-3-small": "emb-1", "gpt-4o": "chat-1",
                        "gpt-35-turbo-instruct": "instruct-1"}}, http_session)
    await provider.embeddings(EmbeddingsRequest({"model": "embed", "input": "a"}))
    await provider.chat(ChatRequest({"model": "gpt-4o",
                                     "messages": [{"role": "user", "content": "x"}]}))
    await provider.completions(CompletionsRequest({"model": "gpt-35-turbo-instruct",
                                                   "prompt": "x"}))
    assert [(r.path, r.query) for r in upstream.requests] == [
        ("/openai/deployments/emb-1/embeddings", {"api-version": "2024-10-21"}),
        ("/openai/deployments/chat-1/chat/completions", {"api-version": "2024-10-21"}),
        ("/openai/deployments/instruct-1/completions", {"api-version": "2024-10-21"}),
    ]
    assert all(r.headers["api-key"] == "k" and "Authorization" not in r.headers
               for r in upstream.requests)
    assert upstream.requests[0].json()["model"] == "text-embedding-3-small"


async def test_models_are_the_configured_deployments():
    provider = azure(deployment="gpt-4o-prod",
                     deployments={"gpt-4o": "chat-eu", "text-embedding-3-small": "emb-eu"})
    assert [m.id for m in await provider.list_models()] == [
        "gpt-4o", "text-embedding-3-small", "gpt-4o-prod"]
    assert {"chat", "embeddings", "completions"} <= provider.operations


def test_deployments_must_map_names_to_names():
    with pytest.raises(ConfigError, match="deployments must map model names to deployment"):
        azure(deployments=["gpt-4o"])
    with pytest.raises(ConfigError, match=r"deployments\.gpt-4o: expected a string"):
        azure(deployments={"gpt-4o": 3})
