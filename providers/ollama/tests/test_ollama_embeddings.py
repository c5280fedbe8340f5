"""Embeddings through the Ollama provider, against a local fake of the native /api/embed:
the body, batches, encodings, errors and configuration."""

import base64
import struct

import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, InvalidRequestError, UpstreamError
from ferro.testing import make_provider, single_provider

MODEL = "nomic-embed-text"


def vector_for(text):
    """A vector the fake derives from the text ("t7" -> [7.0, 0.75]), so order is checkable."""
    return [float(text.removeprefix("t")), 0.75]


async def fake_ollama(request):
    body = await request.json()
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    return web.json_response({"model": body["model"],
                              "embeddings": [vector_for(t) for t in texts],
                              "total_duration": 14143917, "load_duration": 1019500,
                              "prompt_eval_count": 5 * len(texts)})


@pytest.fixture
def ollama_at(http_session):
    return lambda upstream, **kw: make_provider(
        "ollama", {"base_url": upstream.url, **kw}, http_session)


def embed(**body):
    return EmbeddingsRequest({"model": MODEL, "input": "t1", **body})


async def test_one_input_goes_to_the_native_api(fake_upstream, ollama_at):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    response = await ollama_at(upstream).embeddings(embed())
    (call,) = upstream.requests
    assert call.path == "/api/embed"
    assert "Authorization" not in call.headers
    assert call.json() == {"model": MODEL, "input": ["t1"], "truncate": False}
    assert response.body["data"] == [{"object": "embedding", "index": 0,
                                      "embedding": [1.0, 0.75]}]
    assert response.body["model"] == MODEL
    assert response.body["provider"] == "ollama"
    assert response.body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


async def test_a_list_goes_in_one_call_in_order(fake_upstream, ollama_at):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    response = await ollama_at(upstream).embeddings(embed(input=["t9", "t3"]))
    assert upstream.requests[0].json()["input"] == ["t9", "t3"]
    assert [d["embedding"][0] for d in response.body["data"]] == [9.0, 3.0]


async def test_a_batch_over_the_limit_is_split_and_merged_in_order(fake_upstream,
                                                                    http_session):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    provider = make_provider("ollama", {"base_url": upstream.url}, http_session)
    provider.max_embedding_batch = 10
    response = await provider.embeddings(embed(input=[f"t{i}" for i in range(25)]))
    assert sorted(len(r.json()["input"]) for r in upstream.requests) == [5, 10, 10]
    assert [d["embedding"][0] for d in response.body["data"]] == [float(i) for i in range(25)]
    assert [d["index"] for d in response.body["data"]] == list(range(25))
    assert response.body["usage"] == {"prompt_tokens": 125, "total_tokens": 125}


async def test_base64_decodes_back_to_the_floats(fake_upstream, ollama_at):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    response = await ollama_at(upstream).embeddings(embed(input=["t4", "t6"],
                                                          encoding_format="base64"))
    decoded = [list(struct.unpack("<2f", base64.b64decode(d["embedding"])))
               for d in response.body["data"]]
    assert decoded == [[4.0, 0.75], [6.0, 0.75]]


async def test_dimensions_truncate_key_and_model_map_reach_the_native_request(fake_upstream,
                                                                                http_session):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    provider = make_provider("ollama", {"base_url": upstream.url, "api_key": "proxy-key",
                                        "embedding_truncate": True,
                                        "model_map": {"embed": MODEL}}, http_session)
    response = await provider.embeddings(embed(model="embed", dimensions=2))
    (call,) = upstream.requests
    assert call.json() == {"model": MODEL, "input": ["t1"], "truncate": True, "dimensions": 2}
    assert call.headers["Authorization"] == "Bearer proxy-key"
    assert response.body["model"] == "embed"


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
async def test_token_arrays_are_a_400_before_any_call(fake_upstream, ollama_at, tokens):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    with pytest.raises(InvalidRequestError, match="token arrays") as info:
        await ollama_at(upstream).embeddings(embed(input=tokens))
    assert info.value.status == 400
    assert upstream.requests == []


@pytest.mark.parametrize("status", [429, 500])
async def test_upstream_errors_keep_their_status(fake_upstream, ollama_at, status):
    upstream = await fake_upstream({"POST /api/embed": (status, {"error": "server busy"})})
    with pytest.raises(UpstreamError) as info:
        await ollama_at(upstream).embeddings(embed(input=["t1", "t2"]))
    assert info.value.status == status
    assert info.value.retryable
    assert "server busy" in info.value.message


async def test_a_model_that_is_not_pulled_is_a_404(fake_upstream, ollama_at):
    error = {"error": 'model "nomic-embed-text" not found, try pulling it first'}
    upstream = await fake_upstream({"POST /api/embed": (404, error)})
    with pytest.raises(UpstreamError, match="try pulling it") as info:
        await ollama_at(upstream).embeddings(embed())
    assert info.value.status == 404


async def test_overlong_input_without_truncate_is_context_length_exceeded(fake_upstream,
                                                                          ollama_at):
    error = {"error": "the input length exceeds the context length"}
    upstream = await fake_upstream({"POST /api/embed": (400, error)})
    with pytest.raises(UpstreamError) as info:
        await ollama_at(upstream).embeddings(embed())
    assert info.value.code == "context_length_exceeded"


def test_embeddings_are_served_for_any_model():
    provider = make_provider("ollama", {}, None)
    assert "embeddings" in provider.operations and "chat" in provider.operations
    assert provider.supports_model("mxbai-embed-large:latest")
    assert provider.options.embedding_truncate is False


async def test_the_openai_sdk_gets_floats_back(fake_upstream, openai_client):
    upstream = await fake_upstream({"POST /api/embed": fake_ollama})
    client = await openai_client(single_provider("ollama", type="ollama",
                                                 base_url=upstream.url))
    result = await client.embeddings.create(model=MODEL, input=["t5", "t6"])
    assert [d.embedding for d in result.data] == [[5.0, 0.75], [6.0, 0.75]]
    assert result.usage.prompt_tokens == 10
