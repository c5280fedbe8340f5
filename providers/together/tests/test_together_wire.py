"""Together's request and response differences, from its API reference and OpenAPI spec."""

import pytest
from ferro import InvalidRequestError
from ferro.testing import make_provider
from ferro_provider_together._wire import served_models, together_body

BASE = {"model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {}),
    ({"max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"max_tokens": 10, "max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"stop": "END"}, {"stop": ["END"]}),
    ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
    ({"stream": True, "stream_options": {"include_usage": True}}, {"stream": True}),
    ({"logprobs": False, "top_logprobs": 2}, {}),
    ({"n": 2, "seed": 1, "logit_bias": {"1": 2}, "response_format": {"type": "json_object"},
      "tool_choice": "required"},
     {"n": 2, "seed": 1, "logit_bias": {"1": 2}, "response_format": {"type": "json_object"},
      "tool_choice": "required"}),
])
def test_request_translation(extra, sent):
    body = {**BASE, **extra}
    before = dict(body)
    assert together_body(body) == {**BASE, **sent}
    assert body == before


def test_openai_logprobs_are_refused_because_the_answer_shape_differs():
    with pytest.raises(InvalidRequestError, match="together cannot express logprobs"):
        together_body({**BASE, "logprobs": True, "top_logprobs": 3})


@pytest.mark.parametrize(("reasons", "after"), [
    (["eos"], ["stop"]),
    (["stop", "eos"], ["stop", "stop"]),
    (["length"], ["length"]),
    (["tool_calls"], ["tool_calls"]),
    ([None], [None]),
])
def test_eos_becomes_stop(reasons, after):
    provider = make_provider("together", {"api_key": "k"}, None)
    body = {"choices": [{"index": i, "finish_reason": r} for i, r in enumerate(reasons)]}
    provider.adapt_response(body)
    assert [c["finish_reason"] for c in body["choices"]] == after


def test_chat_and_embedding_models_are_discovered_with_their_operations():
    listing = [
        {"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model", "type": "chat"},
        {"id": "Qwen/Qwen2.5-Coder-32B-Instruct", "object": "model", "type": "code"},
        {"id": "BAAI/bge-large-en-v1.5", "object": "model", "type": "embedding"},
        {"id": "black-forest-labs/FLUX.1-schnell", "object": "model", "type": "image"},
        {"id": "mistralai/Mixtral-8x7B-v0.1", "object": "model", "type": "language"},
    ]
    chat = ("chat", "completions")
    assert served_models(listing) == [("meta-llama/Llama-3.3-70B-Instruct-Turbo", chat),
                                      ("Qwen/Qwen2.5-Coder-32B-Instruct", chat),
                                      ("BAAI/bge-large-en-v1.5", ("embeddings",)),
                                      ("mistralai/Mixtral-8x7B-v0.1", chat)]
    assert served_models({"data": listing[:1]}) == [
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", chat)]
