"""The pure embeddings translation: OpenAI inputs to Cohere's /v2/embed body and back."""

import pytest
from ferro import InvalidRequestError, UpstreamError
from ferro_provider_cohere._embed import embed_answer, embed_request, input_type, model_operations


def test_the_body_asks_for_float_vectors_with_input_type_and_truncate():
    assert embed_request("embed-v4.0", ["a", "b"], input_type="search_query",
                         truncate="NONE") == {
        "model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_query",
        "embedding_types": ["float"], "truncate": "NONE"}
    body = embed_request("embed-v4.0", ["a"], input_type="clustering", truncate="END",
                         dimensions=512)
    assert body["output_dimension"] == 512 and body["truncate"] == "END"


@pytest.mark.parametrize(("body", "sent"), [
    ({}, "search_document"),
    ({"input_type": None}, "search_document"),
    ({"input_type": "search_query"}, "search_query"),
    ({"input_type": "classification"}, "classification"),
])
def test_input_type_comes_from_the_request_else_the_option(body, sent):
    assert input_type(body, "search_document") == sent


@pytest.mark.parametrize("value", ["query", "SEARCH_QUERY", "image", 3, ""])
def test_an_unknown_input_type_is_a_400_naming_the_choices(value):
    with pytest.raises(InvalidRequestError) as info:
        input_type({"input_type": value}, "search_document")
    assert info.value.param == "input_type"
    assert "search_query" in info.value.message


def test_the_answer_gives_vectors_and_billed_input_tokens():
    data = {"id": "e1", "embeddings": {"float": [[0.5], [1.5]]}, "texts": ["a", "b"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 4}}}
    assert embed_answer(data, 2, "co") == ([[0.5], [1.5]], 4)
    no_meta = {"embeddings": {"float": [[0.5]]}}
    assert embed_answer(no_meta, 1, "co") == ([[0.5]], 0)
    tokens_only = {**no_meta, "meta": {"tokens": {"input_tokens": 3}}}
    assert embed_answer(tokens_only, 1, "co") == ([[0.5]], 3)


@pytest.mark.parametrize("data", [
    {"embeddings": {"float": [[0.5]]}},
    {"embeddings": {"int8": [[1], [2]]}},
    {"embeddings": [[0.5], [1.5]]},
    {"embeddings": {"float": [[0.5], "x"]}},
    None,
])
def test_an_answer_that_does_not_match_the_texts_is_a_502(data):
    with pytest.raises(UpstreamError) as info:
        embed_answer(data, 2, "co")
    assert info.value.status == 502
    assert info.value.code == "invalid_upstream_response"


@pytest.mark.parametrize(("endpoints", "ops"), [
    (["generate", "chat"], ("chat", "completions")),
    (["embed"], ("embeddings",)),
    (["chat", "embed"], ("chat", "completions", "embeddings")),
    (["rerank"], ()),
    (None, None),
])
def test_model_operations_from_endpoints(endpoints, ops):
    assert model_operations(endpoints) == ops
