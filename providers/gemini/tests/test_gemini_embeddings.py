"""Embeddings through the Gemini provider, against a local fake of embedContent and
batchEmbedContents: URLs, bodies, batches, encodings, errors and model discovery."""

import base64
import struct

import pytest
from aiohttp import web
from ferro import EmbeddingsRequest, InvalidRequestError, UpstreamError
from ferro.testing import make_provider, single_provider

MODEL = "gemini-embedding-001"
ROUTE = "POST /v1beta/models/{call}"


def vector_for(text):
    """A vector the fake derives from the text ("t7" -> [7.0, 0.5]), so order is checkable."""
    return [float(text.removeprefix("t")), 0.5]


async def fake_gemini(request):
    body = await request.json()
    if request.path.endswith(":embedContent"):
        text = body["content"]["parts"][0]["text"]
        return web.json_response({"embedding": {"values": vector_for(text)},
                                  "usageMetadata": {"promptTokenCount": 2}})
    texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
    return web.json_response({"embeddings": [{"values": vector_for(t)} for t in texts],
                              "usageMetadata": {"promptTokenCount": 2 * len(texts)}})


@pytest.fixture
def gemini_at(http_session):
    return lambda upstream, **kw: make_provider(
        "gemini", {"api_key": "k", "base_url": upstream.url, **kw}, http_session)


def embed(**body):
    return EmbeddingsRequest({"model": MODEL, "input": "t1", **body})


async def test_one_input_is_embed_content(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    response = await gemini_at(upstream).embeddings(embed())
    (call,) = upstream.requests
    assert call.path == f"/v1beta/models/{MODEL}:embedContent"
    assert call.headers["x-goog-api-key"] == "k" and "key" not in call.query
    assert call.json() == {"model": f"models/{MODEL}",
                           "content": {"parts": [{"text": "t1"}]}}
    assert response.body["object"] == "list"
    assert response.body["data"] == [{"object": "embedding", "index": 0,
                                      "embedding": [1.0, 0.5]}]
    assert response.body["model"] == MODEL
    assert response.body["provider"] == "gemini"
    assert response.body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


async def test_a_list_is_batch_embed_contents(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    response = await gemini_at(upstream).embeddings(embed(input=["t3", "t4"]))
    (call,) = upstream.requests
    assert call.path == f"/v1beta/models/{MODEL}:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in call.json()["requests"]] == ["t3", "t4"]
    assert all(r["model"] == f"models/{MODEL}" for r in call.json()["requests"])
    assert [d["embedding"] for d in response.body["data"]] == [[3.0, 0.5], [4.0, 0.5]]
    assert [d["index"] for d in response.body["data"]] == [0, 1]


async def test_more_than_100_inputs_are_split_and_merged_in_order(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    texts = [f"t{i}" for i in range(250)]
    response = await gemini_at(upstream).embeddings(embed(input=texts))
    sizes = sorted(len(r.json()["requests"]) for r in upstream.requests)
    assert sizes == [50, 100, 100]
    assert [d["embedding"][0] for d in response.body["data"]] == [float(i) for i in range(250)]
    assert [d["index"] for d in response.body["data"]] == list(range(250))
    assert response.body["usage"] == {"prompt_tokens": 500, "total_tokens": 500}


async def test_base64_decodes_back_to_the_floats(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    response = await gemini_at(upstream).embeddings(embed(input=["t2", "t9"],
                                                          encoding_format="base64"))
    decoded = [list(struct.unpack("<2f", base64.b64decode(d["embedding"])))
               for d in response.body["data"]]
    assert decoded == [[2.0, 0.5], [9.0, 0.5]]


async def test_dimensions_and_task_type_reach_the_native_body(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    provider = gemini_at(upstream, embedding_task_type="retrieval_document")
    await provider.embeddings(embed(dimensions=768))
    await provider.embeddings(embed(input=["t1", "t2"], dimensions=256,
                                    task_type="RETRIEVAL_QUERY"))
    single, batch = (r.json() for r in upstream.requests)
    assert single["taskType"] == "RETRIEVAL_DOCUMENT"
    assert single["outputDimensionality"] == 768
    assert all(r["taskType"] == "RETRIEVAL_QUERY" and r["outputDimensionality"] == 256
               for r in batch["requests"])
    assert "task_type" not in single and "dimensions" not in single


async def test_model_map_is_applied(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    provider = gemini_at(upstream, model_map={"embed": MODEL})
    response = await provider.embeddings(embed(model="embed"))
    assert upstream.requests[0].path == f"/v1beta/models/{MODEL}:embedContent"
    assert response.body["model"] == "embed"


@pytest.mark.parametrize("bad", [
    {"input": [1, 2, 3]},
    {"input": [[1, 2], [3]]},
    {"task_type": 7},
    {"model": "text-embedding-004/../../files"},
])
async def test_refusals_are_400s_before_any_call(fake_upstream, gemini_at, bad):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    with pytest.raises(InvalidRequestError) as info:
        await gemini_at(upstream).embeddings(embed(**bad))
    assert info.value.status == 400
    if "input" in bad:
        assert "token arrays" in info.value.message
    assert upstream.requests == []


@pytest.mark.parametrize(("status", "name"), [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL")])
async def test_upstream_errors_keep_their_status(fake_upstream, gemini_at, status, name):
    error = {"error": {"code": status, "message": "try later", "status": name, "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}}
    upstream = await fake_upstream({ROUTE: (status, error)})
    for request in (embed(), embed(input=["t1", "t2"])):
        with pytest.raises(UpstreamError) as info:
            await gemini_at(upstream).embeddings(request)
        assert info.value.status == status
        assert info.value.retryable
        assert info.value.headers["Retry-After"] == "3"


async def test_an_error_in_one_of_several_batches_keeps_its_status(fake_upstream, gemini_at):
    error = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    upstream = await fake_upstream({ROUTE: (429, error)})
    with pytest.raises(UpstreamError) as info:
        await gemini_at(upstream).embeddings(embed(input=[f"t{i}" for i in range(150)]))
    assert info.value.status == 429


async def test_an_answer_missing_vectors_is_a_502(fake_upstream, gemini_at):
    upstream = await fake_upstream({ROUTE: {"embeddings": [{"values": [1.0]}]}})
    with pytest.raises(UpstreamError) as info:
        await gemini_at(upstream).embeddings(embed(input=["t1", "t2"]))
    assert info.value.status == 502


async def test_discovery_lists_embedding_models_with_their_operations(fake_upstream, gemini_at):
    upstream = await fake_upstream({"GET /v1beta/models": {"models": [
        {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent"]},
        {"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]},
        {"name": "models/imagen-4", "supportedGenerationMethods": ["predict"]}]}})
    models = {m.id: m.operations for m in await gemini_at(upstream).list_models()}
    assert models == {"gemini-2.5-flash": ("chat", "completions"),
                      "gemini-embedding-001": ("embeddings",)}


def test_embedding_models_are_served_on_the_default_base_url():
    provider = make_provider("gemini", {"api_key": "k"}, None)
    assert "embeddings" in provider.operations and "chat" in provider.operations
    for model in ("gemini-embedding-001", "text-embedding-004", "models/text-embedding-004"):
        assert provider.supports_model(model)


async def test_the_openai_sdk_gets_floats_back(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: fake_gemini})
    client = await openai_client(single_provider("gemini", type="gemini", api_key="k",
                                                 base_url=upstream.url))
    result = await client.embeddings.create(model=MODEL, input=["t5", "t6"],
                                            extra_body={"task_type": "CLUSTERING"})
    assert [d.embedding for d in result.data] == [[5.0, 0.5], [6.0, 0.5]]
    assert result.usage.prompt_tokens == 4
    assert upstream.requests[0].json()["requests"][0]["taskType"] == "CLUSTERING"
