"""The pure embeddings translation: OpenAI inputs to Ollama's /api/embed body and back."""

import pytest
from ferro import UpstreamError
from ferro_provider_ollama._wire import embed_answer, embed_request


def test_the_body_carries_inputs_truncate_and_dimensions():
    assert embed_request("nomic-embed-text", ["a", "b"], truncate=False) == {
        "model": "nomic-embed-text", "input": ["a", "b"], "truncate": False}
    assert embed_request("m", ["a"], truncate=True, dimensions=64)["dimensions"] == 64


def test_the_answer_gives_vectors_and_prompt_eval_count():
    data = {"model": "m", "embeddings": [[0.5, 1.0], [2.0, 3.0]], "total_duration": 14143917,
            "load_duration": 1019500, "prompt_eval_count": 8}
    assert embed_answer(data, 2, "ollama") == ([[0.5, 1.0], [2.0, 3.0]], 8)
    assert embed_answer({"embeddings": [[1.0]]}, 1, "ollama") == ([[1.0]], 0)
    assert embed_answer({"embeddings": [[1.0, 2.0]]}, 1, "ollama", dimensions=2)[0] == [[1.0, 2.0]]


@pytest.mark.parametrize(("data", "expected"), [
    ({"embeddings": [[1.0]]}, 2),
    ({"embeddings": [[1.0], None]}, 2),
    ({"embedding": [1.0]}, 1),
    ({"error": "boom"}, 1),
    ([], 1),
])
def test_an_answer_that_does_not_match_the_inputs_is_a_502(data, expected):
    with pytest.raises(UpstreamError) as info:
        embed_answer(data, expected, "ollama")
    assert info.value.status == 502
    assert info.value.code == "invalid_upstream_response"


def test_vectors_longer_than_the_dimensions_asked_for_are_an_error_not_a_silent_mismatch():
    with pytest.raises(UpstreamError, match="does not support dimensions") as info:
        embed_answer({"embeddings": [[1.0, 2.0, 3.0]]}, 1, "ollama", dimensions=2)
    assert not info.value.retryable
