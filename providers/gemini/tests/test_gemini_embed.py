"""The pure embeddings translation: OpenAI inputs to Gemini's EmbedContentRequest and the
ContentEmbedding answers back."""

import pytest
from ferro import InvalidRequestError, UpstreamError
from ferro_provider_gemini._embed import (
    batch_answer,
    batch_request,
    embed_request,
    model_operations,
    single_answer,
    task_type,
)

PATH = "models/gemini-embedding-001"


def test_one_request_carries_the_model_text_task_type_and_dimensions():
    assert embed_request(PATH, "hi") == {"model": PATH, "content": {"parts": [{"text": "hi"}]}}
    assert embed_request(PATH, "hi", task_type="RETRIEVAL_QUERY", dimensions=768) == {
        "model": PATH, "content": {"parts": [{"text": "hi"}]},
        "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 768}


def test_a_batch_is_one_request_per_text_in_order():
    body = batch_request(PATH, ["a", "b", "c"], task_type="CLUSTERING", dimensions=256)
    assert [r["content"]["parts"][0]["text"] for r in body["requests"]] == ["a", "b", "c"]
    assert all(r["model"] == PATH and r["taskType"] == "CLUSTERING"
               and r["outputDimensionality"] == 256 for r in body["requests"])


@pytest.mark.parametrize(("body", "default", "sent"), [
    ({}, None, None),
    ({}, "RETRIEVAL_DOCUMENT", "RETRIEVAL_DOCUMENT"),
    ({"task_type": "retrieval_query"}, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"),
    ({"task_type": " SEMANTIC_SIMILARITY "}, None, "SEMANTIC_SIMILARITY"),
    ({"task_type": None}, "RETRIEVAL_DOCUMENT", None),
    ({"task_type": ""}, "RETRIEVAL_DOCUMENT", None),
])
def test_task_type_comes_from_the_request_else_the_option(body, default, sent):
    assert task_type(body, default) == sent


@pytest.mark.parametrize("value", [5, ["RETRIEVAL_QUERY"], {"type": "x"}, True])
def test_a_task_type_that_is_not_a_string_is_a_400(value):
    with pytest.raises(InvalidRequestError) as info:
        task_type({"task_type": value}, None)
    assert info.value.param == "task_type"


def test_answers_give_vectors_and_prompt_tokens():
    assert single_answer({"embedding": {"values": [0.5, -1.0]}}, "g") == ([[0.5, -1.0]], 0)
    data = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}],
            "usageMetadata": {"promptTokenCount": 7}}
    assert batch_answer(data, 2, "g") == ([[1.0], [2.0]], 7)


@pytest.mark.parametrize(("data", "expected"), [
    ({"embeddings": [{"values": [1.0]}]}, 2),
    ({"embeddings": [{"values": [1.0]}, {}]}, 2),
    ({"embeddings": None}, 1),
    ([], 1),
    ({"error": {"code": 500}}, 1),
])
def test_an_answer_that_does_not_match_the_inputs_is_a_502(data, expected):
    with pytest.raises(UpstreamError) as info:
        batch_answer(data, expected, "g")
    assert info.value.status == 502
    assert info.value.code == "invalid_upstream_response"
    with pytest.raises(UpstreamError):
        single_answer({"embedding": "nope"}, "g")


@pytest.mark.parametrize(("methods", "ops"), [
    (["generateContent", "countTokens"], ("chat", "completions")),
    (["embedContent"], ("embeddings",)),
    (["embedContent", "batchEmbedContents"], ("embeddings",)),
    (["generateContent", "embedContent"], ("chat", "completions", "embeddings")),
    (["predict"], ()),
    (None, None),
])
def test_model_operations_from_supported_generation_methods(methods, ops):
    assert model_operations(methods) == ops
