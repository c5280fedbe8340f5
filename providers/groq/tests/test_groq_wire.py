"""Groq's documented unsupported fields (https://console.groq.com/docs/openai)."""

import pytest
from ferro import InvalidRequestError
from ferro_provider_groq._wire import groq_body, x_groq_error

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {}),
    ({"n": 1}, {"n": 1}),
    ({"logprobs": False}, {}),
    ({"logprobs": False, "top_logprobs": None, "logit_bias": {}}, {}),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
      "seed": 3, "max_completion_tokens": 9},
     {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
      "seed": 3, "max_completion_tokens": 9}),
])
def test_fields_groq_accepts_or_that_ask_for_nothing(extra, sent):
    body = {"model": "m", "messages": MESSAGES, **extra}
    assert groq_body(body) == {"model": "m", "messages": MESSAGES, **sent}


@pytest.mark.parametrize(("extra", "named"), [
    ({"n": 2}, "n=2"),
    ({"logprobs": True}, "logprobs"),
    ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
])
def test_fields_that_would_change_the_answer_are_refused(extra, named):
    with pytest.raises(InvalidRequestError) as info:
        groq_body({"model": "m", "messages": MESSAGES, **extra})
    assert info.value.status == 400
    assert info.value.code == "unsupported_parameter"
    assert named in info.value.message and "groq" in info.value.message


def test_participant_names_are_left_out_without_touching_the_request():
    messages = [{"role": "system", "content": "s"},
                {"role": "user", "name": "alice", "content": "hi"}]
    body = {"model": "m", "messages": messages}
    out = groq_body(body)
    assert out["messages"] == [{"role": "system", "content": "s"},
                               {"role": "user", "content": "hi"}]
    assert out["messages"][0] is messages[0]
    assert messages[1]["name"] == "alice"  # the client's request is never mutated


@pytest.mark.parametrize(("chunk", "error"), [
    ({"x_groq": {"id": "req_1"}}, None),
    ({"x_groq": {"id": "req_1", "usage": {"prompt_tokens": 1}}}, None),
    ({"x_groq": {"error": "over capacity"}}, "over capacity"),
    ({"choices": []}, None),
])
def test_x_groq_error(chunk, error):
    assert x_groq_error(chunk) == error
