"""Embeddings through the Cohere provider, against a local fake of /v2/embed: the body,
batches of 96, encodings, errors, configuration and model discovery."""

import base64
import struct

import pytest
from aiohttp import web
from ferro import ConfigError, EmbeddingsRequest, InvalidRequestError, UpstreamError
from ferro.testing import make_provider, single_provider

MODEL = "embed-v4.0"


def vector_for(text):
    """A vector the fake derives from the text ("t7" -> [7.0, -0.25]), so order is checkable."""
    return [float(text.removeprefix("t")), -0.25]


async def fake_cohere(request):
    body = await request.json()
    assert body["embedding_types"] == ["float"]
    return web.json_response({
        "id": "emb-1", "response_type": "embeddings_by_type", "texts": body["texts"],
        "embeddings": {"float": [vector_for(t) for t in body["texts"]]},
        "meta": {"api_version": {"version": "2"},
                 "billed_units": {"input_tokens": 3 * len(body["texts"])}}})


@pytest.fixture
def cohere_at(http_session):
    return lambda upstream, **kw: make_provider(
        "cohere", {"api_key": "k", "base_url": upstream.url, **kw}, http_session)


def embed(**body):
    return EmbeddingsRequest({"model": MODEL, "input": "t1", **body})


async def test_one_input_is_one_text(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    response = await cohere_at(upstream).embeddings(embed())
    (call,) = upstream.requests
    assert call.headers["Authorization"] == "Bearer k"
    assert call.json() == {"model": MODEL, "texts": ["t1"], "input_type": "search_document",
                           "embedding_types": ["float"], "truncate": "NONE"}
    assert response.body["data"] == [{"object": "embedding", "index": 0,
                                      "embedding": [1.0, -0.25]}]
    assert response.body["model"] == MODEL
    assert response.body["provider"] == "cohere"
    assert response.body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


async def test_a_list_goes_in_one_call_in_order(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    response = await cohere_at(upstream).embeddings(embed(input=["t4", "t2", "t8"]))
    assert upstream.requests[0].json()["texts"] == ["t4", "t2", "t8"]
    assert [d["embedding"][0] for d in response.body["data"]] == [4.0, 2.0, 8.0]


async def test_more_than_96_texts_are_split_and_merged_in_order(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    texts = [f"t{i}" for i in range(200)]
    response = await cohere_at(upstream).embeddings(embed(input=texts))
    assert sorted(len(r.json()["texts"]) for r in upstream.requests) == [8, 96, 96]
    assert [d["embedding"][0] for d in response.body["data"]] == [float(i) for i in range(200)]
    assert [d["index"] for d in response.body["data"]] == list(range(200))
    assert response.body["usage"] == {"prompt_tokens": 600, "total_tokens": 600}


async def test_base64_decodes_back_to_the_floats(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    response = await cohere_at(upstream).embeddings(embed(input=["t3", "t5"],
                                                          encoding_format="base64"))
    decoded = [list(struct.unpack("<2f", base64.b64decode(d["embedding"])))
               for d in response.body["data"]]
    assert decoded == [[3.0, -0.25], [5.0, -0.25]]


async def test_dimensions_input_type_and_truncate_reach_the_native_body(fake_upstream,
                                                                         cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    provider = cohere_at(upstream, embedding_input_type="clustering", embedding_truncate="END")
    await provider.embeddings(embed(dimensions=256))
    await provider.embeddings(embed(input_type="search_query"))
    configured, overridden = (r.json() for r in upstream.requests)
    assert configured["output_dimension"] == 256
    assert configured["input_type"] == "clustering" and configured["truncate"] == "END"
    assert overridden["input_type"] == "search_query"
    assert "output_dimension" not in overridden and "dimensions" not in overridden


async def test_model_map_is_applied(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    response = await cohere_at(upstream, model_map={"embed": MODEL}).embeddings(
        embed(model="embed"))
    assert upstream.requests[0].json()["model"] == MODEL
    assert response.body["model"] == "embed"


@pytest.mark.parametrize("bad", [
    {"input": [101, 102]},
    {"input": [[101], [102]]},
    {"input_type": "query"},
])
async def test_refusals_are_400s_before_any_call(fake_upstream, cohere_at, bad):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    with pytest.raises(InvalidRequestError) as info:
        await cohere_at(upstream).embeddings(embed(**bad))
    assert info.value.status == 400
    if "input" in bad:
        assert "token arrays" in info.value.message
    assert upstream.requests == []


def failing_with(status):
    async def failing(request):
        return web.json_response({"id": "e", "message": "slow down"}, status=status,
                                 headers={"Retry-After": "4"})

    return failing


@pytest.mark.parametrize("status", [429, 500])
async def test_upstream_errors_keep_their_status(fake_upstream, cohere_at, status):
    upstream = await fake_upstream({"POST /v2/embed": failing_with(status)})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).embeddings(embed(input=["t1", "t2"]))
    assert info.value.status == status
    assert info.value.retryable
    assert info.value.headers["Retry-After"] == "4"
    assert "slow down" in info.value.message


@pytest.mark.parametrize("status", [429, 500])
async def test_an_error_in_one_of_several_batches_keeps_its_status(fake_upstream, cohere_at,
                                                                   status):
    upstream = await fake_upstream({"POST /v2/embed": failing_with(status)})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).embeddings(embed(input=[f"t{i}" for i in range(100)]))
    assert info.value.status == status


async def test_too_many_tokens_is_context_length_exceeded(fake_upstream, cohere_at):
    upstream = await fake_upstream({"POST /v2/embed": (400, {
        "message": "too many tokens: the input is longer than the model's 512-token limit"})})
    with pytest.raises(UpstreamError) as info:
        await cohere_at(upstream).embeddings(embed())
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"


async def test_discovery_lists_embed_models_with_their_operations(fake_upstream, cohere_at):
    upstream = await fake_upstream({"GET /v1/models": {"models": [
        {"name": "command-a-03-2025", "endpoints": ["generate", "chat", "summarize"]},
        {"name": "embed-v4.0", "endpoints": ["embed"]},
        {"name": "rerank-v3.5", "endpoints": ["rerank"]}]}})
    models = {m.id: m.operations for m in await cohere_at(upstream).list_models()}
    assert models == {"command-a-03-2025": ("chat", "completions"),
                      "embed-v4.0": ("embeddings",)}
    assert "endpoint" not in upstream.requests[0].query


def test_embed_models_are_served_on_the_default_base_url():
    provider = make_provider("cohere", {"api_key": "k"}, None)
    assert "embeddings" in provider.operations
    assert provider.embed_url == "https://api.cohere.com/v2/embed"
    assert provider.supports_model("embed-v4.0")
    assert provider.supports_model("embed-multilingual-light-v3.0")


@pytest.mark.parametrize("option", [{"embedding_input_type": "query"},
                                    {"embedding_truncate": "MIDDLE"}])
def test_unknown_embedding_options_are_config_errors(option):
    with pytest.raises(ConfigError, match=next(iter(option))):
        make_provider("cohere", {"api_key": "k", **option}, None)


async def test_the_openai_sdk_gets_floats_back(fake_upstream, openai_client):
    upstream = await fake_upstream({"POST /v2/embed": fake_cohere})
    client = await openai_client(single_provider("cohere", type="cohere", api_key="k",
                                                 base_url=upstream.url))
    result = await client.embeddings.create(model=MODEL, input=["t5", "t6"],
                                            extra_body={"input_type": "search_query"})
    assert [d.embedding for d in result.data] == [[5.0, -0.25], [6.0, -0.25]]
    assert result.usage.prompt_tokens == 6
    assert upstream.requests[0].json()["input_type"] == "search_query"
