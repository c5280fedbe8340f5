"""The pure translation in ``_wire.py``, from the documented Cohere v2 formats
(https://docs.cohere.com/reference/chat)."""

import pytest
from ferro import InvalidRequestError, UpstreamError
from ferro_provider_cohere._wire import (
    build_request,
    completion,
    finish_reason,
    messages,
    response_format,
    tool_setup,
    usage,
)

PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time"}}


def request(**fields):
    return {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}],
            **fields}


def build(**fields):
    return build_request(request(**fields), "command-a-03-2025", "cohere", stream=False)


# --- messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(("openai", "cohere"), [
    pytest.param(
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "hi"}], id="user string stays a string"),
    pytest.param(
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
        id="system message"),
    pytest.param(
        [{"role": "developer", "content": [{"type": "text", "text": "Rule 1."}]},
         {"role": "user", "content": "hi"},
         {"role": "system", "content": "Rule 2."},
         {"role": "user", "content": "again"}],
        [{"role": "system", "content": "Rule 1.\n\nRule 2."},
         {"role": "user", "content": "hi"}, {"role": "user", "content": "again"}],
        id="developer and later system messages join into one leading system turn"),
    pytest.param(
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}],
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}],
        id="text and image parts (data and web URLs) become Cohere content blocks"),
    pytest.param(
        [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_time", "arguments": ""}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
         {"role": "tool", "tool_call_id": "call_2",
          "content": [{"type": "text", "text": "12:00"}]}],
        [{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_time", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
         {"role": "tool", "tool_call_id": "call_2",
          "content": [{"type": "text", "text": "12:00"}]}],
        id="assistant tool calls keep ids and arguments; tool results keep their call ids"),
    pytest.param(
        [{"role": "assistant", "content": "I will look it up.", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]}],
        [{"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]}],
        id="assistant text next to tool calls is the tool plan"),
    pytest.param(
        [{"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}],
        [{"role": "assistant", "content": "Hello"}], id="assistant text parts"),
])
def test_messages(openai, cohere):
    assert messages(openai, "cohere") == cohere


@pytest.mark.parametrize("bad", [
    pytest.param({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
                 id="audio part"),
    pytest.param({"role": "user", "content": [{"type": "file", "file": {}}]}, id="file part"),
    pytest.param({"role": "function", "name": "f", "content": "x"}, id="legacy function role"),
    pytest.param({"role": "tool", "tool_call_id": "c", "content": [
        {"type": "image_url", "image_url": {"url": PNG}}]}, id="image in a tool result"),
])
def test_parts_cohere_cannot_take_are_refused(bad):
    with pytest.raises(InvalidRequestError) as info:
        messages([bad], "cohere")
    assert info.value.status == 400
    assert "cohere cannot express" in info.value.message


def test_tool_call_without_id_is_a_400():
    with pytest.raises(InvalidRequestError, match=r"tool_calls\[0\]"):
        messages([{"role": "assistant", "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}], "cohere")


# --- tools --------------------------------------------------------------------------------


COHERE_WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": WEATHER["function"]["parameters"]}}
COHERE_TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize(("choice", "tools", "cohere_choice"), [
    pytest.param(None, [COHERE_WEATHER, COHERE_TIME], None, id="unset"),
    pytest.param("auto", [COHERE_WEATHER, COHERE_TIME], None, id="auto"),
    pytest.param("none", [COHERE_WEATHER, COHERE_TIME], "NONE", id="none"),
    pytest.param("required", [COHERE_WEATHER, COHERE_TIME], "REQUIRED", id="required"),
    pytest.param({"type": "function", "function": {"name": "get_time"}}, [COHERE_TIME],
                 "REQUIRED", id="a named function: only it is offered, and required"),
    pytest.param({"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}},
        [COHERE_WEATHER], None, id="allowed_tools auto"),
    pytest.param({"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]}},
        [COHERE_TIME], "REQUIRED", id="allowed_tools required"),
])
def test_tool_choice(choice, tools, cohere_choice):
    assert tool_setup([WEATHER, TIME], choice, "cohere") == (tools, cohere_choice)


@pytest.mark.parametrize("choice", [
    {"type": "function", "function": {"name": "nope"}}, "sometimes", {"type": "custom"}])
def test_invalid_tool_choice_is_a_400(choice):
    with pytest.raises(InvalidRequestError):
        tool_setup([WEATHER], choice, "cohere")


def test_strict_function_asks_for_strict_tools():
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    assert build(tools=[strict, TIME])["strict_tools"] is True
    assert "strict_tools" not in build(tools=[WEATHER])


def test_non_function_tools_are_refused():
    with pytest.raises(InvalidRequestError, match="cohere cannot express tools of type"):
        tool_setup([{"type": "custom", "function": {"name": "x"}}], None, "cohere")


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({}, {}, id="nothing extra"),
    pytest.param({"max_tokens": 10}, {"max_tokens": 10}, id="max_tokens"),
    pytest.param({"max_completion_tokens": 20, "max_tokens": 10}, {"max_tokens": 20},
                 id="max_completion_tokens wins"),
    pytest.param({"stop": "END"}, {"stop_sequences": ["END"]}, id="stop string"),
    pytest.param({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}, id="stop list"),
    pytest.param({"temperature": 0.2, "seed": 7, "frequency_penalty": 0.5,
                  "presence_penalty": 0.1},
                 {"temperature": 0.2, "seed": 7, "frequency_penalty": 0.5,
                  "presence_penalty": 0.1}, id="same-named sampling fields"),
    pytest.param({"top_p": 0.9}, {"p": 0.9}, id="top_p is p"),
    pytest.param({"top_p": 1.0}, {"p": 0.99}, id="top_p clamped to Cohere's max"),
    pytest.param({"top_p": 0}, {"p": 0.01}, id="top_p clamped to Cohere's min"),
    pytest.param({"top_k": 40}, {"k": 40}, id="top_k is k"),
    pytest.param({"logprobs": True}, {"logprobs": True}, id="logprobs"),
    pytest.param({"n": 1, "user": "u-1", "store": False, "metadata": {"a": "b"},
                  "service_tier": "auto", "stream_options": {"include_usage": True}}, {},
                 id="fields that do not change the answer are ignored"),
    pytest.param({"reasoning_effort": "none"}, {"thinking": {"type": "disabled"}},
                 id="reasoning_effort none turns thinking off"),
    pytest.param({"reasoning_effort": "high"}, {}, id="other efforts keep Cohere's default"),
    pytest.param({"response_format": {"type": "json_object"}},
                 {"response_format": {"type": "json_object"}}, id="json_object"),
])
def test_parameters(fields, expected):
    base = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}],
            "stream": False}
    assert build(**fields) == {**base, **expected}


@pytest.mark.parametrize(("fmt", "expected"), [
    (None, None),
    ({"type": "text"}, None),
    ({"type": "json_object"}, {"type": "json_object"}),
    ({"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": {
        "type": "object", "properties": {"name": {"type": "string"}}}}},
     {"type": "json_object", "json_schema": {
         "type": "object", "properties": {"name": {"type": "string"}}}}),
])
def test_response_format(fmt, expected):
    assert response_format(fmt) == expected


@pytest.mark.parametrize(("fields", "named"), [
    ({"n": 2}, "n > 1"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"logprobs": True, "top_logprobs": 3}, "top_logprobs"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"modalities": ["text", "audio"], "audio": {"voice": "alloy"}}, "audio"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"verbosity": "low"}, "verbosity"),
])
def test_fields_cohere_cannot_express_are_refused(fields, named):
    with pytest.raises(InvalidRequestError) as info:
        build(**fields)
    assert info.value.status == 400
    assert info.value.code == "unsupported_parameter"
    assert named in info.value.message


def test_safety_mode_option_and_stream_flag():
    body = build_request(request(), "command-r", "cohere", stream=True, safety_mode="STRICT")
    assert body["stream"] is True
    assert body["safety_mode"] == "STRICT"
    assert body["model"] == "command-r"


# --- answers ------------------------------------------------------------------------------


def reply(**fields):
    return {"id": "resp-1", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2},
                      "tokens": {"input_tokens": 71, "output_tokens": 2}},
            **fields}


def test_text_answer():
    body = completion(reply(), "command-a-03-2025", "co")
    assert body["id"] == "resp-1"
    assert body["object"] == "chat.completion"
    assert body["model"] == "command-a-03-2025"
    assert body["provider"] == "co"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hi!"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 71, "completion_tokens": 2, "total_tokens": 73}


def test_tool_call_answer_keeps_ids_and_plan():
    body = completion(reply(finish_reason="TOOL_CALL", message={
        "role": "assistant", "tool_plan": "I will check the weather.",
        "tool_calls": [
            {"id": "get_weather_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "get_time_def", "type": "function",
             "function": {"name": "get_time", "arguments": "{}"}}]}), "m", "co")
    message = body["choices"][0]["message"]
    assert message["content"] == "I will check the weather."
    assert [c["id"] for c in message["tool_calls"]] == ["get_weather_abc", "get_time_def"]
    assert message["tool_calls"][0] == {
        "id": "get_weather_abc", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_tool_calls_false_keeps_the_first_call():
    body = completion(reply(finish_reason="TOOL_CALL", message={"role": "assistant", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}),
        "m", "co", max_tool_calls=1)
    assert [c["id"] for c in body["choices"][0]["message"]["tool_calls"]] == ["a"]


def test_thinking_becomes_reasoning_content():
    body = completion(reply(message={"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Let me see."}, {"type": "text", "text": "42"}]}),
        "m", "co")
    assert body["choices"][0]["message"] == {
        "role": "assistant", "content": "42", "reasoning_content": "Let me see."}


def test_logprobs_are_per_text_chunk():
    body = completion(reply(logprobs=[
        {"text": "Hi", "token_ids": [1], "logprobs": [-0.5]},
        {"text": "!!", "token_ids": [2, 3], "logprobs": [-0.25, -0.25]}]), "m", "co")
    entries = body["choices"][0]["logprobs"]["content"]
    assert [(e["token"], e["logprob"]) for e in entries] == [("Hi", -0.5), ("!!", -0.5)]
    assert entries[0]["bytes"] == [72, 105]


@pytest.mark.parametrize(("cohere", "has_calls", "openai"), [
    ("COMPLETE", False, "stop"),
    ("STOP_SEQUENCE", False, "stop"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),  # cut off during a tool call stays length
    ("TOOL_CALL", True, "tool_calls"),
    (None, True, "tool_calls"),
    (None, False, "stop"),
    ("CONTENT_FLAGGED", False, "content_flagged"),  # a future reason is never called stop
])
def test_finish_reason(cohere, has_calls, openai):
    assert finish_reason(cohere, has_calls) == openai


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_failed_generation_is_a_retryable_502_not_an_answer(reason):
    with pytest.raises(UpstreamError) as info:
        completion(reply(finish_reason=reason), "m", "co")
    assert info.value.status == 502
    assert info.value.retryable
    assert reason in info.value.message


@pytest.mark.parametrize("data", [None, [], {"id": "x"}, {"message": "oops"}])
def test_answer_without_a_message_is_a_502(data):
    with pytest.raises(UpstreamError) as info:
        completion(data, "m", "co")
    assert info.value.status == 502


@pytest.mark.parametrize(("raw", "expected"), [
    ({"billed_units": {"input_tokens": 5, "output_tokens": 418},
      "tokens": {"input_tokens": 71, "output_tokens": 418}}, (71, 418, 489, 0)),
    ({"billed_units": {"input_tokens": 5.0, "output_tokens": 9.0}}, (5, 9, 14, 0)),
    ({"tokens": {"input_tokens": 100, "output_tokens": 3}, "cached_tokens": 64},
     (100, 3, 103, 64)),
])
def test_usage_prefers_processed_tokens(raw, expected):
    got = usage(raw)
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens,
            got.cached_tokens) == expected


def test_cached_tokens_reach_the_openai_usage():
    body = completion(reply(usage={"tokens": {"input_tokens": 100, "output_tokens": 3},
                                   "cached_tokens": 64}), "m", "co")
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 64}
    assert body["usage"]["prompt_tokens"] == 100
