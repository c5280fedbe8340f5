"""Embeddings through the OpenAI provider, against a local fake of POST /v1/embeddings:
URL and auth, the body passed through whole, batches above OpenAI's 2048-input limit,
errors, and the official client end to end."""

import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, UpstreamError, embeddings
from ferro.testing import make_provider, single_provider

MODEL = "text-embedding-3-small"
ROUTE = "POST /v1/embeddings"


def vector_for(item):
    """The fake's vector for an input ("t7" -> [7.0, 0.5]), so order is checkable."""
    return [float(item.removeprefix("t")) if isinstance(item, str) else float(len(item)), 0.5]


async def fake_embeddings(request):
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return web.json_response({
        "object": "list", "model": body["model"],
        "data": [{"object": "embedding", "index": i, "embedding": vector_for(x)}
                 for i, x in enumerate(inputs)],
        "usage": {"prompt_tokens": 2 * len(inputs), "total_tokens": 2 * len(inputs)}})


@pytest.fixture
def openai_at(http_session):
    return lambda upstream, **kw: make_provider(
        "openai", {"api_key": "sk-test", "base_url": upstream.url + "/v1", **kw}, http_session)


async def test_the_body_reaches_openai_whole(fake_upstream, openai_at):
    upstream = await fake_upstream({ROUTE: fake_embeddings})
    body = {"model": MODEL, "input": ["t1", "t2"], "encoding_format": "base64",
            "dimensions": 256, "user": "u-1", "some_future_field": {"kept": True}}
    response = await openai_at(upstream).embeddings(EmbeddingsRequest(dict(body)))
    (call,) = upstream.requests
    assert call.path == "/v1/embeddings"
    assert call.headers["Authorization"] == "Bearer sk-test"
    assert call.json() == body
    # the fake answers floats whatever was asked: the gateway encodes them as asked
    assert [d["embedding"] for d in response.body["data"]] == [
        embeddings.encode_vector([1.0, 0.5]), embeddings.encode_vector([2.0, 0.5])]
    assert response.body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert response.body["provider"] == "openai"


async def test_token_arrays_and_the_model_map(fake_upstream, openai_at):
    upstream = await fake_upstream({ROUTE: fake_embeddings})
    provider = openai_at(upstream, model_map={"embed": "text-embedding-3-large"})
    await provider.embeddings(EmbeddingsRequest({"model": "embed", "input": [[1, 2], [3]]}))
    assert upstream.requests[0].json() == {"model": "text-embedding-3-large",
                                           "input": [[1, 2], [3]]}


async def test_more_than_2048_inputs_are_split_and_merged_in_order(fake_upstream, openai_at):
    upstream = await fake_upstream({ROUTE: fake_embeddings})
    inputs = [f"t{i}" for i in range(2050)]
    body = {"model": MODEL, "input": inputs, "dimensions": 64, "user": "u-1"}
    response = await openai_at(upstream).embeddings(EmbeddingsRequest(body))
    sent = sorted((r.json() for r in upstream.requests), key=lambda b: len(b["input"]))
    assert [len(b["input"]) for b in sent] == [2, 2048]
    assert sent[1]["input"] == inputs[:2048] and sent[0]["input"] == inputs[2048:]
    assert all(b["dimensions"] == 64 and b["user"] == "u-1" for b in sent)
    data = response.body["data"]
    assert [d["index"] for d in data] == list(range(2050))
    assert [d["embedding"][0] for d in data] == [float(i) for i in range(2050)]
    assert response.body["usage"] == {"prompt_tokens": 4100, "total_tokens": 4100}


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, openai_at):
    async def limited(request):
        return web.json_response({"error": {"message": "Rate limit reached",
                                             "type": "requests", "code": "rate_limit_exceeded"}},
                                 status=429, headers={"Retry-After": "3"})

    upstream = await fake_upstream({ROUTE: limited})
    with pytest.raises(UpstreamError) as info:
        await openai_at(upstream).embeddings(EmbeddingsRequest({"model": MODEL, "input": "t1"}))
    assert info.value.status == 429 and info.value.retryable
    assert info.value.headers == {"Retry-After": "3"}
    assert "Rate limit reached" in info.value.message


@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-large",
                                   "text-embedding-ada-002", "gpt-3.5-turbo-instruct",
                                   "davinci-002", "babbage-002"])
def test_embedding_and_legacy_completion_models_are_served(model):
    provider = make_provider("openai", {"api_key": "k"}, None)
    assert provider.supports_model(model)
    assert {"chat", "embeddings", "completions"} <= provider.operations


async def test_the_openai_sdk_gets_its_vectors(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: fake_embeddings})
    client = await openai_client(single_provider("openai", api_key="k",
                                                 base_url=upstream.url + "/v1"))
    result = await client.embeddings.create(model=MODEL, input=["t5", "t6"], dimensions=2)
    assert [d.embedding for d in result.data] == [[5.0, 0.5], [6.0, 0.5]]
    assert result.usage.prompt_tokens == 4
    sent = upstream.requests[0].json()
    assert sent["dimensions"] == 2 and sent["encoding_format"] == "base64"  # the SDK's default
