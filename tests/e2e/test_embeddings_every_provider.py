"""Embeddings (``POST /v1/embeddings``) through every provider that serves them, with the
official openai client (``client.embeddings.create``), against a local fake of each
provider's native embeddings API.

The SDK asks for ``base64`` unless told otherwise and decodes it; with ``float`` the vectors
come as they are. Either way the client must get the fake's vectors, in input order, with
the usage the provider reported, and the upstream must get the inputs (and ``dimensions``
under the provider's own name) in its own format. Larger batches than a provider takes are
split and merged back in order; providers without embeddings are a 400 that says so; a
fallback strategy moves on from a failing target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import openai
import pytest
from aiohttp import web
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.testing import RecordedRequest, single_provider

from tests.e2e.native_fakes import (
    DEFAULT_DIMENSIONS,
    cohere_embed,
    gemini_embed,
    mistral_embeddings,
    ollama_embed,
    openai_embeddings,
    together_embeddings,
    tokens_of,
    vector_for,
)

TEXTS = ["The quick brown fox", "jumps over", "the lazy dog tonight"]


@attrs.frozen
class Case:
    model: str
    #: The fake's route (an aiohttp pattern) and its answer to a native request.
    route: str
    answer: Callable[[web.Request, dict[str, Any]], dict[str, Any]]
    #: Upstream base URL -> the provider's settings.
    settings: Callable[[str], dict[str, Any]]
    #: Where the upstream must be called, by the number of inputs in the call.
    path: Callable[[int], str]
    #: The texts of a native request, and its vector size (None: the provider has no
    #: such field).
    texts: Callable[[dict[str, Any]], list[str]]
    dimensions: Callable[[dict[str, Any]], Any] | None
    query: dict[str, str] = attrs.Factory(dict)
    #: Whether the provider reports token usage (else the client must see 0).
    reports_usage: bool = True


def _openai_texts(body: dict[str, Any]) -> list[str]:
    value = body["input"]
    return [value] if isinstance(value, str) else value


def _gemini_texts(body: dict[str, Any]) -> list[str]:
    requests = body.get("requests") or [body]
    return ["".join(p["text"] for p in r["content"]["parts"]) for r in requests]


def _gemini_dimensions(body: dict[str, Any]) -> Any:
    sizes = {r.get("outputDimensionality") for r in body.get("requests") or [body]}
    assert len(sizes) == 1
    return sizes.pop()


def _openai_at_v1(url: str) -> dict[str, Any]:
    return {"api_key": "k", "base_url": url + "/v1"}


CASES = {
    "openai": Case(
        model="text-embedding-3-small", route="/v1/embeddings",
        answer=lambda r, b: openai_embeddings(b), settings=_openai_at_v1,
        path=lambda n: "/v1/embeddings", texts=_openai_texts,
        dimensions=lambda b: b.get("dimensions")),
    "azure-openai": Case(
        model="text-embedding-3-small", route="/openai/deployments/{deployment}/embeddings",
        answer=lambda r, b: openai_embeddings(b),
        settings=lambda url: {"api_key": "k", "base_url": url, "deployment": "chat-eu",
                              "deployments": {"text-embedding-3-small": "embed-eu"}},
        path=lambda n: "/openai/deployments/embed-eu/embeddings", texts=_openai_texts,
        dimensions=lambda b: b.get("dimensions"), query={"api-version": "2024-10-21"}),
    "together": Case(
        model="togethercomputer/m2-bert-80M-8k-retrieval", route="/v1/embeddings",
        answer=lambda r, b: together_embeddings(b), settings=_openai_at_v1,
        path=lambda n: "/v1/embeddings", texts=_openai_texts, dimensions=None,
        reports_usage=False),
    "mistral": Case(
        model="codestral-embed", route="/v1/embeddings",
        answer=lambda r, b: mistral_embeddings(b), settings=_openai_at_v1,
        path=lambda n: "/v1/embeddings", texts=_openai_texts,
        dimensions=lambda b: b.get("output_dimension")),
    "gemini": Case(
        model="gemini-embedding-001", route="/v1beta/models/{call}",
        answer=lambda r, b: gemini_embed(r.path, b),
        settings=lambda url: {"api_key": "k", "base_url": url},
        path=lambda n: "/v1beta/models/gemini-embedding-001:"
                       + ("embedContent" if n == 1 else "batchEmbedContents"),
        texts=_gemini_texts, dimensions=_gemini_dimensions, reports_usage=False),
    "cohere": Case(
        model="embed-v4.0", route="/v2/embed", answer=lambda r, b: cohere_embed(b),
        settings=lambda url: {"api_key": "k", "base_url": url},
        path=lambda n: "/v2/embed", texts=lambda b: b["texts"],
        dimensions=lambda b: b.get("output_dimension")),
    "ollama": Case(
        model="embeddinggemma", route="/api/embed", answer=lambda r, b: ollama_embed(b),
        settings=lambda url: {"base_url": url}, path=lambda n: "/api/embed",
        texts=_openai_texts, dimensions=lambda b: b.get("dimensions")),
}
SERVED = list(CASES)
#: Providers that send the client's body on as it is.
PASS_THROUGH = ("openai", "azure-openai")
NOT_SERVED = ["groq", "deepseek", "anthropic"]


def provider_class(provider: str) -> type:
    return build_registry(make_plugin_manager(env={})).lookup("providers", provider, "<test>")


@pytest.fixture
def gateway(fake_upstream, openai_client):
    """``await gateway(provider)`` -> (openai client, fake upstream, case)."""

    async def start(provider: str):
        case = CASES[provider]

        async def embed(request: web.Request) -> web.Response:
            return web.json_response(case.answer(request, await request.json()))

        upstream = await fake_upstream({f"POST {case.route}": embed})
        client = await openai_client(single_provider(provider, type=provider,
                                                     **case.settings(upstream.url)))
        return client, upstream, case

    return start


def check_native_call(case: Case, call: RecordedRequest, texts: list[str],
                      dimensions: int | None = None) -> dict[str, Any]:
    body = call.json()
    assert call.path == case.path(len(texts))
    assert call.query == case.query
    assert case.texts(body) == texts
    if case.dimensions is not None:
        assert case.dimensions(body) == dimensions
    return body


def check_vectors(reply: Any, texts: list[str], dimensions: int = DEFAULT_DIMENSIONS) -> None:
    assert reply.object == "list"
    assert [d.index for d in reply.data] == list(range(len(texts)))
    assert [d.embedding for d in reply.data] == [vector_for(t, dimensions) for t in texts]


def expected_tokens(case: Case, texts: list[str]) -> int:
    return tokens_of(texts) if case.reports_usage else 0


@pytest.mark.parametrize("provider", SERVED)
async def test_embeddings_as_the_sdk_asks_by_default(gateway, provider):
    client, upstream, case = await gateway(provider)
    reply = await client.embeddings.create(model=case.model, input=TEXTS)
    check_vectors(reply, TEXTS)
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (
        expected_tokens(case, TEXTS), expected_tokens(case, TEXTS))
    assert reply.model_extra["provider"] == provider
    [call] = upstream.requests
    body = check_native_call(case, call, TEXTS)
    if provider in PASS_THROUGH:  # the client's body, untouched
        assert body == {"model": case.model, "input": TEXTS, "encoding_format": "base64"}


@pytest.mark.parametrize("provider", SERVED)
async def test_embeddings_as_floats(gateway, provider):
    client, upstream, case = await gateway(provider)
    reply = await client.embeddings.create(model=case.model, input=TEXTS,
                                           encoding_format="float")
    assert all(isinstance(d.embedding, list) for d in reply.data)
    check_vectors(reply, TEXTS)
    assert reply.usage.prompt_tokens == expected_tokens(case, TEXTS)
    [call] = upstream.requests
    check_native_call(case, call, TEXTS)


@pytest.mark.parametrize("provider", SERVED)
async def test_one_string_gets_one_vector(gateway, provider):
    client, upstream, case = await gateway(provider)
    reply = await client.embeddings.create(model=case.model, input=TEXTS[0])
    check_vectors(reply, TEXTS[:1])
    [call] = upstream.requests
    check_native_call(case, call, TEXTS[:1])


@pytest.mark.parametrize("provider", [n for n in SERVED if CASES[n].dimensions])
@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_dimensions_reach_the_upstream_under_its_own_name(gateway, provider, encoding):
    client, upstream, case = await gateway(provider)
    kwargs = {"encoding_format": "float"} if encoding == "float" else {}
    reply = await client.embeddings.create(model=case.model, input=TEXTS, dimensions=8,
                                           **kwargs)
    check_vectors(reply, TEXTS, dimensions=8)
    [call] = upstream.requests
    body = check_native_call(case, call, TEXTS, dimensions=8)
    if provider not in ("openai", "azure-openai", "ollama"):
        assert "dimensions" not in body


@pytest.mark.parametrize("provider", [n for n in SERVED if not CASES[n].dimensions])
async def test_dimensions_are_a_400_where_the_provider_has_none(gateway, provider):
    client, upstream, case = await gateway(provider)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model=case.model, input=TEXTS, dimensions=8)
    assert "dimensions" in caught.value.message
    assert upstream.requests == []


#: Providers that take fewer inputs per call than OpenAI's 2048.
SMALL_BATCHES = [n for n in SERVED if provider_class(n).max_embedding_batch < 2048]


@pytest.mark.parametrize("provider", SMALL_BATCHES)
async def test_a_batch_over_the_limit_is_split_and_merged_in_order(gateway, provider):
    limit = provider_class(provider).max_embedding_batch
    texts = [f"document number {i}" for i in range(2 * limit + 3)]
    client, upstream, case = await gateway(provider)
    reply = await client.embeddings.create(model=case.model, input=texts)
    check_vectors(reply, texts)
    assert reply.usage.prompt_tokens == expected_tokens(case, texts)
    batches = sorted((case.texts(call.json()) for call in upstream.requests),
                     key=lambda batch: texts.index(batch[0]))
    assert [len(b) for b in batches] == [limit, limit, 3]
    assert [t for b in batches for t in b] == texts
    for call in upstream.requests:
        assert call.path == case.path(2)


@pytest.mark.parametrize("provider", NOT_SERVED)
async def test_a_provider_without_embeddings_is_a_400_that_says_so(fake_upstream,
                                                                   openai_client, provider):
    upstream = await fake_upstream({"POST /{tail:.*}": (500, {"error": "not for embeddings"})})
    client = await openai_client(single_provider(provider, type=provider, api_key="k",
                                                 base_url=upstream.url))
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="some-embedding-model", input=TEXTS)
    message = caught.value.message
    assert f"provider {provider} does not serve embeddings" in message
    assert upstream.requests == []


async def test_fallback_moves_on_from_a_failing_target(fake_upstream, openai_client):
    down = await fake_upstream({"POST /v1/embeddings": (
        503, {"error": {"message": "overloaded, try later", "type": "server_error"}})})

    async def embed(request: web.Request) -> web.Response:
        return web.json_response(openai_embeddings(await request.json()))

    backup = await fake_upstream({"POST /v1/embeddings": embed})
    client = await openai_client({
        "strategy": {"mode": "fallback"},
        "providers": {
            "primary": {"type": "openai", "api_key": "k", "base_url": down.url + "/v1"},
            "backup": {"type": "openai", "api_key": "k", "base_url": backup.url + "/v1"}},
        "targets": [{"virtual_key": "primary"}, {"virtual_key": "backup"}]})
    for kwargs in ({}, {"encoding_format": "float"}):
        reply = await client.embeddings.create(model="text-embedding-3-small", input=TEXTS,
                                               **kwargs)
        check_vectors(reply, TEXTS)
        assert reply.model_extra["provider"] == "backup"
        assert reply.usage.prompt_tokens == tokens_of(TEXTS)
    assert len(down.requests) == len(backup.requests) == 2


async def test_fallback_across_providers(fake_upstream, openai_client):
    """A Cohere target that is down, then Gemini: the vectors are Gemini's, and each
    upstream got the request in its own format."""
    down = await fake_upstream({"POST /v2/embed": (
        503, {"message": "the service is temporarily unavailable"})})

    async def gemini(request: web.Request) -> web.Response:
        return web.json_response(gemini_embed(request.path, await request.json()))

    up = await fake_upstream({"POST /v1beta/models/{call}": gemini})
    client = await openai_client({
        "strategy": {"mode": "fallback"},
        "providers": {
            "cohere": {"type": "cohere", "api_key": "k", "base_url": down.url,
                       "models": ["shared-embedder"]},
            "gemini": {"type": "gemini", "api_key": "k", "base_url": up.url,
                       "models": ["shared-embedder"]}},
        "targets": [{"virtual_key": "cohere"}, {"virtual_key": "gemini"}]})
    reply = await client.embeddings.create(model="shared-embedder", input=TEXTS)
    check_vectors(reply, TEXTS)
    assert reply.model_extra["provider"] == "gemini"
    [failed] = down.requests
    assert failed.json()["texts"] == TEXTS
    [answered] = up.requests
    assert _gemini_texts(answered.json()) == TEXTS


async def test_the_echo_provider_embeds_offline(openai_client):
    """The no-key quick start serves embeddings too: deterministic vectors, as the SDK asks."""
    client = await openai_client({"providers": {"echo": {}}})
    reply = await client.embeddings.create(model="any", input=["same", "other", "same"],
                                           dimensions=24)
    vectors = [d.embedding for d in reply.data]
    assert [len(v) for v in vectors] == [24, 24, 24]
    assert vectors[0] == vectors[2] != vectors[1]
    assert reply.usage.prompt_tokens == 3
