"""Mistral's request schema and finish reasons (docs.mistral.ai/api, mistralai/client-python)."""

import pytest
from ferro import InvalidRequestError, UpstreamError
from ferro.testing import make_provider
from ferro_provider_mistral._wire import error_detail, mistral_body, tool_call_id

BASE = {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {}),
    ({"seed": 7}, {"random_seed": 7}),
    ({"seed": 7, "random_seed": 9}, {"random_seed": 9}),
    ({"max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"max_tokens": 10, "max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"max_completion_tokens": None, "max_tokens": 10}, {"max_tokens": 10}),
    ({"seed": None}, {}),
    ({"user": "u-1", "store": False, "service_tier": "auto"}, {"service_tier": "auto"}),
    ({"stream": True, "stream_options": {"include_usage": True}}, {"stream": True}),
    ({"logprobs": False, "top_logprobs": None, "logit_bias": None},
     {"logprobs": False, "top_logprobs": None}),
    ({"n": 2, "tool_choice": "required", "parallel_tool_calls": False,
      "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     {"n": 2, "tool_choice": "required", "parallel_tool_calls": False,
      "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    ({"tool_choice": "any"}, {"tool_choice": "any"}),
])
def test_request_translation(extra, sent):
    body = {**BASE, **extra}
    before = dict(body)
    assert mistral_body(body) == {**BASE, **sent}
    assert body == before


@pytest.mark.parametrize("extra", [{"logit_bias": {"1": 5}}])
def test_answer_changing_fields_are_refused(extra):
    with pytest.raises(InvalidRequestError, match="mistral cannot express"):
        mistral_body({**BASE, **extra})


def test_tool_call_ids_become_nine_alphanumerics_consistently():
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "refusal": None, "annotations": [],
         "tool_calls": [{"id": "call_abc123", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{}"}},
                        {"id": "D681PevKs", "type": "function",
                         "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "21C"},
        {"role": "tool", "tool_call_id": "D681PevKs", "content": "noon"},
    ]
    out = mistral_body({**BASE, "messages": messages})["messages"]
    assistant = out[1]
    assert set(assistant) == {"role", "content", "tool_calls"}  # OpenAI echo fields dropped
    first, second = (c["id"] for c in assistant["tool_calls"])
    assert len(first) == 9 and first.isalnum() and first == out[2]["tool_call_id"]
    assert second == "D681PevKs" == out[3]["tool_call_id"]  # a valid id is kept
    assert out[0] is messages[0]
    assert messages[1]["tool_calls"][0]["id"] == "call_abc123"  # request not mutated


def test_valid_messages_pass_through_as_the_same_list():
    messages = [{"role": "assistant", "content": "x", "tool_calls": [
        {"id": "abcDEF123", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "abcDEF123", "content": "y"}]
    assert mistral_body({**BASE, "messages": messages})["messages"] is messages


@pytest.mark.parametrize(("given", "expected"), [
    ("abcDEF123", "abcDEF123"),
    ("call_abc123", tool_call_id("call_abc123")),
])
def test_tool_call_id_is_stable(given, expected):
    assert tool_call_id(given) == expected
    assert len(tool_call_id(given)) == 9


@pytest.mark.parametrize(("reason", "after"), [
    ("stop", "stop"), ("model_length", "length"), ("tool_calls", "tool_calls"), (None, None),
])
def test_finish_reasons(reason, after):
    body = {"choices": [{"index": 0, "finish_reason": reason}]}
    make_provider("mistral", {"api_key": "k"}, None).adapt_response(body)
    assert body["choices"][0]["finish_reason"] == after


def test_finish_reason_error_is_a_retryable_failure():
    provider = make_provider("mistral", {"api_key": "k"}, None)
    with pytest.raises(UpstreamError) as info:
        provider.adapt_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]})
    assert info.value.status == 502 and info.value.retryable


@pytest.mark.parametrize(("payload", "message"), [
    ({"object": "error", "message": {"detail": [
        {"type": "extra_forbidden", "loc": ["body", "stream_options"],
         "msg": "Extra inputs are not permitted", "input": True}]},
      "type": "invalid_request_error", "param": None, "code": None},
     "body.stream_options: Extra inputs are not permitted"),
    ({"object": "error", "message": "Tool call id was abc but must be a-z, A-Z, 0-9, "
      "with a length of 9.", "type": "invalid_function_call", "code": "3280"},
     "Tool call id was abc but must be a-z, A-Z, 0-9, with a length of 9."),
    ({"detail": [{"loc": ["body", "model"], "msg": "field required"}]},
     "body.model: field required"),
    ({"message": "Unauthorized", "request_id": "r1"}, "Unauthorized"),
    ("oops", None),
])
def test_error_detail(payload, message):
    assert error_detail(payload) == message
