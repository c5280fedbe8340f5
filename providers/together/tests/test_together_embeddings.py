"""Embeddings through Together, against a local fake of POST /v1/embeddings: the body
Together accepts (no user, no dimensions), base64 whatever Together answers, batches, and
errors."""

import base64
import struct

import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, InvalidRequestError, UpstreamError
from ferro.testing import make_provider, single_provider
from ferro_provider_together._wire import embeddings_body

MODEL = "BAAI/bge-large-en-v1.5"
ROUTE = "POST /v1/embeddings"


def vector_for(text):
    return [float(text.removeprefix("t")), 0.5]


def as_base64(vector):
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def fake_together(*, base64_support):
    """Together's embeddings: floats always, or base64 when asked (added in 2025)."""

    async def handler(request):
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        encode = base64_support and body.get("encoding_format") == "base64"
        return web.json_response({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i,
                      "embedding": as_base64(vector_for(t)) if encode else vector_for(t)}
                     for i, t in enumerate(inputs)]})

    return handler


@pytest.fixture
def together_at(http_session):
    return lambda upstream: make_provider(
        "together", {"api_key": "tk", "base_url": upstream.url + "/v1"}, http_session)


async def test_the_body_together_accepts(fake_upstream, together_at):
    upstream = await fake_upstream({ROUTE: fake_together(base64_support=False)})
    body = {"model": MODEL, "input": ["t1", "t2"], "encoding_format": "float", "user": "u-1"}
    response = await together_at(upstream).embeddings(EmbeddingsRequest(dict(body)))
    (call,) = upstream.requests
    assert call.path == "/v1/embeddings"
    assert call.headers["Authorization"] == "Bearer tk"
    assert call.json() == {"model": MODEL, "input": ["t1", "t2"], "encoding_format": "float"}
    assert [d["embedding"] for d in response.body["data"]] == [[1.0, 0.5], [2.0, 0.5]]
    assert response.body["provider"] == "together"


@pytest.mark.parametrize("base64_support", [False, True])
async def test_base64_is_what_the_client_gets(fake_upstream, together_at, base64_support):
    upstream = await fake_upstream({ROUTE: fake_together(base64_support=base64_support)})
    response = await together_at(upstream).embeddings(EmbeddingsRequest(
        {"model": MODEL, "input": ["t3", "t4"], "encoding_format": "base64"}))
    assert upstream.requests[0].json()["encoding_format"] == "base64"
    assert [d["embedding"] for d in response.body["data"]] == [
        as_base64([3.0, 0.5]), as_base64([4.0, 0.5])]


async def test_dimensions_and_token_arrays_are_a_400_before_any_call(fake_upstream, together_at):
    upstream = await fake_upstream({ROUTE: fake_together(base64_support=True)})
    provider = together_at(upstream)
    with pytest.raises(InvalidRequestError, match="together cannot express dimensions"):
        await provider.embeddings(EmbeddingsRequest({"model": MODEL, "input": "t1",
                                                     "dimensions": 256}))
    with pytest.raises(InvalidRequestError, match="token arrays"):
        await provider.embeddings(EmbeddingsRequest({"model": MODEL, "input": [[1, 2]]}))
    assert upstream.requests == []


def test_embeddings_body_never_mutates():
    body = {"model": MODEL, "input": "x", "user": "u"}
    assert embeddings_body(body) == {"model": MODEL, "input": "x"}
    assert body == {"model": MODEL, "input": "x", "user": "u"}
    plain = {"model": MODEL, "input": "x"}
    assert embeddings_body(plain) is plain


async def test_more_than_512_inputs_are_split_and_merged_in_order(fake_upstream, together_at):
    upstream = await fake_upstream({ROUTE: fake_together(base64_support=False)})
    inputs = [f"t{i}" for i in range(1030)]
    response = await together_at(upstream).embeddings(
        EmbeddingsRequest({"model": MODEL, "input": inputs, "user": "u-1"}))
    sent = sorted((r.json() for r in upstream.requests), key=lambda b: int(b["input"][0][1:]))
    assert [len(b["input"]) for b in sent] == [512, 512, 6]
    assert all("user" not in b for b in sent)
    assert [d["embedding"][0] for d in response.body["data"]] == [float(i) for i in range(1030)]
    assert [d["index"] for d in response.body["data"]] == list(range(1030))


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, together_at):
    async def limited(request):
        return web.json_response({"error": {"message": "rate limit exceeded",
                                             "type": "rate_limit"}},
                                 status=429, headers={"Retry-After": "2"})

    upstream = await fake_upstream({ROUTE: limited})
    with pytest.raises(UpstreamError) as info:
        await together_at(upstream).embeddings(EmbeddingsRequest({"model": MODEL, "input": "t"}))
    assert info.value.status == 429 and info.value.headers == {"Retry-After": "2"}


async def test_the_openai_sdk_gets_its_vectors(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: fake_together(base64_support=False)})
    client = await openai_client(single_provider("together", api_key="tk",
                                                 base_url=upstream.url + "/v1"))
    result = await client.embeddings.create(model=MODEL, input=["t5", "t6"], user="u-1")
    assert [d.embedding for d in result.data] == [[5.0, 0.5], [6.0, 0.5]]
    assert "user" not in upstream.requests[0].json()
