"""Embeddings through Azure OpenAI, against a local fake of a deployment's /embeddings:
URL, api-version and key, the body passed through whole, batches above 2048 inputs, what
older api-versions cannot take, and errors."""

import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, InvalidRequestError, UpstreamError, embeddings
from ferro.testing import make_provider
from ferro_provider_azure_openai._wire import supports_embedding_options

DEPLOYMENT = "emb-prod"
PATH = f"/openai/deployments/{DEPLOYMENT}/embeddings"
MODEL = "text-embedding-3-small"


async def fake_embeddings(request):
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return web.json_response({
        "object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": i,
                  "embedding": [float(str(x).removeprefix("t")), 0.5]}
                 for i, x in enumerate(inputs)],
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})


@pytest.fixture
def azure_at(http_session):
    return lambda upstream, **extra: make_provider("azure-openai", {
        "api_key": "ak", "base_url": upstream.url, "deployments": {MODEL: DEPLOYMENT},
        **extra}, http_session)


async def test_the_body_reaches_the_deployment_whole(fake_upstream, azure_at):
    upstream = await fake_upstream({f"POST {PATH}": fake_embeddings})
    body = {"model": MODEL, "input": ["t1", "t2"], "encoding_format": "base64",
            "dimensions": 256, "user": "u-1", "input_type": "query"}
    response = await azure_at(upstream).embeddings(EmbeddingsRequest(dict(body)))
    (call,) = upstream.requests
    assert (call.path, call.query) == (PATH, {"api-version": "2024-10-21"})
    assert call.headers["api-key"] == "ak" and "Authorization" not in call.headers
    assert call.json() == body
    # the fake answers floats whatever was asked: the gateway encodes them as asked
    assert [d["embedding"] for d in response.body["data"]] == [
        embeddings.encode_vector([1.0, 0.5]), embeddings.encode_vector([2.0, 0.5])]
    assert response.body["provider"] == "azure-openai"


async def test_more_than_2048_inputs_are_split_and_merged_in_order(fake_upstream, azure_at):
    upstream = await fake_upstream({f"POST {PATH}": fake_embeddings})
    inputs = [f"t{i}" for i in range(2049)]
    response = await azure_at(upstream).embeddings(
        EmbeddingsRequest({"model": MODEL, "input": inputs, "user": "u-1"}))
    sizes = sorted(len(r.json()["input"]) for r in upstream.requests)
    assert sizes == [1, 2048]
    assert all(r.path == PATH and r.json()["user"] == "u-1" for r in upstream.requests)
    assert [d["embedding"][0] for d in response.body["data"]] == [float(i) for i in range(2049)]
    assert [d["index"] for d in response.body["data"]] == list(range(2049))
    assert response.body["usage"] == {"prompt_tokens": 2049, "total_tokens": 2049}


async def test_dimensions_on_an_older_api_version_is_a_400(fake_upstream, azure_at):
    upstream = await fake_upstream({f"POST {PATH}": fake_embeddings})
    provider = azure_at(upstream, api_version="2024-02-01")
    with pytest.raises(InvalidRequestError) as info:
        await provider.embeddings(EmbeddingsRequest({"model": MODEL, "input": "t1",
                                                     "dimensions": 256}))
    assert info.value.status == 400
    assert "2024-02-01" in info.value.message and "api_version" in info.value.message
    assert upstream.requests == []
    # the rest still goes through on that version, encoding_format as the client sent it
    await provider.embeddings(EmbeddingsRequest({"model": MODEL, "input": "t1",
                                                 "encoding_format": "float"}))
    assert upstream.requests[0].query == {"api-version": "2024-02-01"}
    assert upstream.requests[0].json()["encoding_format"] == "float"


@pytest.mark.parametrize(("version", "supported"), [
    ("2023-05-15", False),
    ("2024-02-01", False),
    ("2024-02-15-preview", False),
    ("2024-03-01-preview", True),
    ("2024-06-01", True),
    ("2024-10-21", True),
    ("2025-04-01-preview", True),
    ("preview", True),
])
def test_embedding_options_by_api_version(version, supported):
    assert supports_embedding_options(version) is supported


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, azure_at):
    async def limited(request):
        return web.json_response(
            {"error": {"code": "429", "message": "Requests to the Embeddings_Create Operation "
                                                "have exceeded call rate limit"}},
            status=429, headers={"Retry-After": "11"})

    upstream = await fake_upstream({f"POST {PATH}": limited})
    with pytest.raises(UpstreamError) as info:
        await azure_at(upstream).embeddings(EmbeddingsRequest({"model": MODEL, "input": "t1"}))
    assert info.value.status == 429 and info.value.retryable
    assert info.value.headers == {"Retry-After": "11"}
    assert "exceeded call rate limit" in info.value.message
