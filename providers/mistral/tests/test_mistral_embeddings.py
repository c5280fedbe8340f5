"""Mistral embeddings: POST /v1/embeddings (mistralai 3.7.0 ``EmbeddingRequest``)."""

import base64
import struct

import orjson
import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, InvalidRequestError
from ferro.testing import make_provider, single_provider
from ferro_provider_mistral._embed import embeddings_body

MODEL = "mistral-embed"
PATH = "POST /v1/embeddings"


async def fake_mistral(request: web.Request) -> web.Response:
    """Mistral's answer: one float vector per input ([i, 0.5] for the i-th), usage by input."""
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return web.json_response({
        "id": "emb-1", "object": "list", "model": body["model"],
        "data": [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]}
                 for i in range(len(inputs))],
        "usage": {"prompt_tokens": len(inputs), "completion_tokens": 0,
                  "total_tokens": len(inputs)}})


@pytest.fixture
def mistral_at(http_session):
    return lambda upstream: make_provider(
        "mistral", {"api_key": "k", "base_url": upstream.url + "/v1"}, http_session)


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {"encoding_format": "float"}),
    ({"dimensions": 256}, {"output_dimension": 256, "encoding_format": "float"}),
    ({"dimensions": 256, "output_dimension": 512},
     {"output_dimension": 512, "encoding_format": "float"}),
    ({"encoding_format": "base64", "user": "u1", "output_dtype": "int8"},
     {"encoding_format": "float", "output_dtype": "int8"}),
])
def test_request_body(extra, sent):
    given = {"model": "codestral-embed", "input": ["x"], **extra}
    before = dict(given)
    assert embeddings_body(given) == {"model": "codestral-embed", "input": ["x"], **sent}
    assert given == before


def test_serves_embeddings_for_mistrals_embedding_models():
    provider = make_provider("mistral", {}, None, env={"MISTRAL_API_KEY": "k"})
    assert {"chat", "embeddings"} <= provider.operations
    assert provider.supports_model("mistral-embed")
    assert provider.supports_model("codestral-embed")
    assert provider.url(provider.embeddings_path, MODEL) == "https://api.mistral.ai/v1/embeddings"


async def test_floats_pass_through(fake_upstream, mistral_at):
    upstream = await fake_upstream({PATH: fake_mistral})
    response = await mistral_at(upstream).embeddings(EmbeddingsRequest(
        {"model": MODEL, "input": ["a", "b"], "dimensions": 2}))
    assert [d["embedding"] for d in response.body["data"]] == [[0.0, 0.5], [1.0, 0.5]]
    assert response.body["usage"]["prompt_tokens"] == 2
    assert upstream.requests[0].json() == {"model": MODEL, "input": ["a", "b"],
                                           "output_dimension": 2, "encoding_format": "float"}


async def test_base64_is_encoded_by_the_gateway(fake_upstream, mistral_at):
    upstream = await fake_upstream({PATH: fake_mistral})
    response = await mistral_at(upstream).embeddings(EmbeddingsRequest(
        {"model": MODEL, "input": "a", "encoding_format": "base64"}))
    encoded = response.body["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.0, 0.5)
    assert upstream.requests[0].json()["encoding_format"] == "float"


async def test_more_than_512_inputs_go_in_batches(fake_upstream, mistral_at):
    upstream = await fake_upstream({PATH: fake_mistral})
    inputs = [f"t{i}" for i in range(600)]
    response = await mistral_at(upstream).embeddings(EmbeddingsRequest(
        {"model": MODEL, "input": inputs}))
    assert sorted(len(r.json()["input"]) for r in upstream.requests) == [88, 512]
    data = response.body["data"]
    assert [d["index"] for d in data] == list(range(600))
    assert data[512]["embedding"] == [0.0, 0.5]  # the second batch's first vector
    assert response.body["usage"]["prompt_tokens"] == 600


async def test_token_arrays_are_refused_before_any_call(fake_upstream, mistral_at):
    upstream = await fake_upstream({PATH: fake_mistral})
    with pytest.raises(InvalidRequestError, match="token arrays"):
        await mistral_at(upstream).embeddings(EmbeddingsRequest(
            {"model": MODEL, "input": [[1, 2, 3]]}))
    assert upstream.requests == []


async def test_the_openai_sdk_gets_its_floats_back(fake_upstream, openai_client):
    # The official client asks for base64 unless told otherwise, and decodes it.
    upstream = await fake_upstream({PATH: fake_mistral})
    client = await openai_client(single_provider("mistral", type="mistral", api_key="k",
                                                 base_url=upstream.url + "/v1"))
    result = await client.embeddings.create(model=MODEL, input=["a", "b"], dimensions=2)
    assert [d.embedding for d in result.data] == [[0.0, 0.5], [1.0, 0.5]]
    sent = orjson.loads(upstream.requests[0].body)
    assert sent["encoding_format"] == "float" and sent["output_dimension"] == 2
