"""The pure translation functions, table-driven, against the documented Messages API shapes."""

import pytest
from ferro import InvalidRequestError
from ferro_provider_anthropic import _wire

PNG = "iVBORw0KGgo="
MODEL = "claude-sonnet-4-5"


def translate(**body):
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return _wire.messages_request({"model": "gw-model", **body}, model=MODEL,
                                  default_max_tokens=4096)


# --- messages ---------------------------------------------------------------------------

MESSAGE_CASES = [
    pytest.param(
        [{"role": "user", "content": "hi"}],
        None, [{"role": "user", "content": "hi"}],
        id="plain-text-stays-a-string"),
    pytest.param(
        [{"role": "system", "content": "A."}, {"role": "developer", "content": "B."},
         {"role": "user", "content": "hi"}, {"role": "system", "content": "C."}],
        "A.\n\nB.\n\nC.", [{"role": "user", "content": "hi"}],
        id="system-and-developer-anywhere-join-in-order"),
    pytest.param(
        [{"role": "system", "content": [
            {"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral"}}]},
         {"role": "system", "content": "Be brief."},
         {"role": "user", "content": "hi"}],
        [{"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral"}},
         {"type": "text", "text": "Be brief."}],
        [{"role": "user", "content": "hi"}],
        id="system-cache-control-keeps-blocks"),
    pytest.param(
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}",
                                                "detail": "high"}}]}],
        None,
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}]}],
        id="data-url-image-becomes-base64-source"),
    pytest.param(
        [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}],
        None,
        [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]}],
        id="remote-image-becomes-url-source"),
    pytest.param(
        [{"role": "user", "content": [{"type": "file", "file": {
            "filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PNG}"}}]}],
        None,
        [{"role": "user", "content": [{"type": "document", "source": {
            "type": "base64", "media_type": "application/pdf", "data": PNG}}]}],
        id="pdf-file-becomes-document"),
    pytest.param(
        [{"role": "user", "content": "weather in Paris and time?"},
         {"role": "assistant", "content": "Checking.", "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "time",
                                                               "arguments": ""}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
         {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text",
                                                                  "text": "noon"}]},
         {"role": "user", "content": "thanks"}],
        None,
        [{"role": "user", "content": "weather in Paris and time?"},
         {"role": "assistant", "content": [
             {"type": "text", "text": "Checking."},
             {"type": "tool_use", "id": "call_1", "name": "weather",
              "input": {"city": "Paris"}},
             {"type": "tool_use", "id": "call_2", "name": "time", "input": {}}]},
         {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "call_1", "content": "21C"},
             {"type": "tool_result", "tool_use_id": "call_2",
              "content": [{"type": "text", "text": "noon"}]},
             {"type": "text", "text": "thanks"}]}],
        id="tool-round-trip-merges-results-into-one-user-turn"),
    pytest.param(
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
         {"role": "assistant", "content": "c"}, {"role": "assistant", "content": [
             {"type": "text", "text": "d"}]}],
        None,
        [{"role": "user", "content": [{"type": "text", "text": "a"},
                                      {"type": "text", "text": "b"}]},
         {"role": "assistant", "content": [{"type": "text", "text": "c"},
                                           {"type": "text", "text": "d"}]}],
        id="same-role-turns-merge-to-alternate"),
    pytest.param(
        [{"role": "user", "content": "x", "name": "alice"},
         {"role": "assistant", "content": ""},
         {"role": "user", "content": "y"}],
        None,
        [{"role": "user", "content": [{"type": "text", "text": "x"},
                                      {"type": "text", "text": "y"}]}],
        id="empty-assistant-turn-dropped"),
    pytest.param(
        [{"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": "4", "thinking_blocks": [
             {"type": "thinking", "thinking": "add", "signature": "sig"}]},
         {"role": "user", "content": "ok"}],
        None,
        [{"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": [
             {"type": "thinking", "thinking": "add", "signature": "sig"},
             {"type": "text", "text": "4"}]},
         {"role": "user", "content": "ok"}],
        id="thinking-blocks-sent-back-unchanged"),
]


@pytest.mark.parametrize(("messages", "system", "expected"), MESSAGE_CASES)
def test_messages_translate(messages, system, expected):
    out = translate(messages=messages)
    assert out.get("system") == system
    assert out["messages"] == expected


def test_tool_results_open_the_user_turn():
    _, turns = _wire.convert_messages([
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "and also"},
        {"role": "tool", "tool_call_id": "c", "content": "done"}])
    assert [b["type"] for b in turns[1]["content"]] == ["tool_result", "text"]


REFUSED_MESSAGES = [
    pytest.param([{"role": "system", "content": "only system"}], "at least one user",
                 id="no-conversation"),
    pytest.param([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
                 "input_audio", id="audio-in"),
    pytest.param([{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": f"data:image/bmp;base64,{PNG}"}}]}], "image/bmp", id="bmp"),
    pytest.param([{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "ftp://x/y.png"}}]}], "data: URL or an http", id="odd-url"),
    pytest.param([{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}],
                 "file_id", id="file-id"),
    pytest.param([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}],
        "not valid JSON", id="bad-arguments"),
    pytest.param([{"role": "tool", "content": "x"}], "tool_call_id", id="tool-without-id"),
    pytest.param([{"role": "function", "name": "f", "content": "x"}], "role 'function'",
                 id="legacy-function-role"),
    pytest.param([{"role": "system", "content": [{"type": "image_url", "image_url": {
        "url": f"data:image/png;base64,{PNG}"}}]}, {"role": "user", "content": "x"}],
        "system", id="image-in-system"),
]


@pytest.mark.parametrize(("messages", "says"), REFUSED_MESSAGES)
def test_inexpressible_messages_are_a_400_that_says_why(messages, says):
    with pytest.raises(InvalidRequestError, match=says) as info:
        translate(messages=messages)
    assert info.value.status == 400


# --- parameters -------------------------------------------------------------------------

PARAMETER_CASES = [
    pytest.param({}, {"max_tokens": 4096}, id="default-max-tokens"),
    pytest.param({"max_tokens": 100}, {"max_tokens": 100}, id="max-tokens"),
    pytest.param({"max_completion_tokens": 50, "max_tokens": 100}, {"max_tokens": 50},
                 id="max-completion-tokens-wins"),
    pytest.param({"stop": "END"}, {"stop_sequences": ["END"]}, id="stop-string"),
    pytest.param({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}, id="stop-list"),
    pytest.param({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9},
                 id="sampling"),
    pytest.param({"user": "user-42"}, {"metadata": {"user_id": "user-42"}}, id="user"),
    pytest.param({"seed": 7, "n": 1, "presence_penalty": 0, "store": True,
                  "metadata": {"k": "v"}, "stream_options": {"include_usage": True}},
                 {"max_tokens": 4096}, id="ignored-fields-send-nothing"),
    pytest.param({"stream": True}, {"stream": True}, id="stream"),
    pytest.param({"reasoning_effort": "medium"},
                 {"max_tokens": 4096 + 2048,
                  "thinking": {"type": "enabled", "budget_tokens": 2048}},
                 id="reasoning-effort-adds-its-budget"),
    pytest.param({"reasoning_effort": "high", "max_completion_tokens": 3000},
                 {"max_tokens": 3000, "thinking": {"type": "enabled", "budget_tokens": 1500}},
                 id="reasoning-effort-within-an-explicit-limit"),
    pytest.param({"reasoning_effort": "none"}, {"max_tokens": 4096}, id="reasoning-none"),
    pytest.param({"thinking": {"type": "enabled", "budget_tokens": 2000}, "top_k": 5},
                 {"thinking": {"type": "enabled", "budget_tokens": 2000}, "top_k": 5},
                 id="native-thinking-and-top-k-pass-through"),
]


@pytest.mark.parametrize(("body", "expected"), PARAMETER_CASES)
def test_parameters_translate(body, expected):
    out = translate(**body)
    for key, value in expected.items():
        assert out[key] == value, key
    ignored = {"seed", "n", "presence_penalty", "store", "stream_options", "user",
               "max_completion_tokens", "stop", "reasoning_effort", "response_format"}
    assert not ignored & out.keys()
    if "metadata" in out:
        assert set(out["metadata"]) == {"user_id"}


REFUSED_PARAMETERS = [
    pytest.param({"n": 2}, "n > 1", id="n"),
    pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
    pytest.param({"top_logprobs": 3}, "logprobs", id="top-logprobs"),
    pytest.param({"logit_bias": {"50256": -100}}, "logit_bias", id="logit-bias"),
    pytest.param({"presence_penalty": 0.5}, "presence_penalty", id="presence"),
    pytest.param({"frequency_penalty": -1}, "frequency_penalty", id="frequency"),
    pytest.param({"temperature": 1.5}, "temperature", id="temperature-above-1"),
    pytest.param({"functions": [{"name": "f"}]}, "functions", id="legacy-functions"),
    pytest.param({"modalities": ["text", "audio"]}, "audio", id="audio-out"),
    pytest.param({"web_search_options": {}}, "web_search_options", id="web-search"),
    pytest.param({"reasoning_effort": "low", "max_tokens": 1000}, "1024", id="tiny-budget"),
    pytest.param({"reasoning_effort": "extreme"}, "reasoning_effort", id="bad-effort"),
    pytest.param({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "array"}}}}, "root is not an object",
        id="array-schema"),
    pytest.param({"response_format": {"type": "grammar"}}, "grammar", id="unknown-format"),
]


@pytest.mark.parametrize(("body", "says"), REFUSED_PARAMETERS)
def test_inexpressible_parameters_are_a_400(body, says):
    with pytest.raises(InvalidRequestError, match=says) as info:
        translate(**body)
    assert info.value.status == 400


# --- tools ------------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
WEATHER_NATIVE = {"name": "get_weather", "description": "Weather for a city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]}}

TOOL_CHOICE_CASES = [
    pytest.param({}, None, id="absent"),
    pytest.param({"tool_choice": "auto"}, {"type": "auto"}, id="auto"),
    pytest.param({"tool_choice": "required"}, {"type": "any"}, id="required"),
    pytest.param({"tool_choice": "none"}, {"type": "none"}, id="none"),
    pytest.param({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
                 {"type": "tool", "name": "get_weather"}, id="named"),
    pytest.param({"parallel_tool_calls": False},
                 {"type": "auto", "disable_parallel_tool_use": True}, id="no-parallel"),
    pytest.param({"tool_choice": "required", "parallel_tool_calls": False},
                 {"type": "any", "disable_parallel_tool_use": True}, id="required-no-parallel"),
    pytest.param({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"},
                 id="none-no-parallel"),
    pytest.param({"parallel_tool_calls": True}, None, id="parallel-is-the-default"),
]


@pytest.mark.parametrize(("fields", "expected"), TOOL_CHOICE_CASES)
def test_tools_and_tool_choice(fields, expected):
    out = translate(tools=[WEATHER], **fields)
    assert out["tools"] == [WEATHER_NATIVE]  # strict is not sent
    assert out.get("tool_choice") == expected


def test_tool_cache_control_and_missing_parameters():
    out = translate(tools=[{"type": "function", "cache_control": {"type": "ephemeral"},
                            "function": {"name": "ping"}}])
    assert out["tools"] == [{"name": "ping", "input_schema": {"type": "object",
                                                              "properties": {}},
                             "cache_control": {"type": "ephemeral"}}]


def test_tool_choice_without_tools_sends_neither():
    out = translate(tool_choice="auto", parallel_tool_calls=False)
    assert "tools" not in out and "tool_choice" not in out


def test_non_function_tools_are_refused():
    with pytest.raises(InvalidRequestError, match="custom"):
        translate(tools=[{"type": "custom", "custom": {"name": "x"}}])


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}},
          "required": ["answer"]}

RESPONSE_FORMAT_CASES = [
    pytest.param({"type": "json_object"}, {}, {"type": "object"},
                 {"type": "tool", "name": "json_response"}, id="json-object"),
    pytest.param({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA,
                                                         "strict": True}},
                 {}, SCHEMA, {"type": "tool", "name": "json_response"}, id="json-schema"),
    pytest.param({"type": "json_object"}, {"tools": [WEATHER]}, {"type": "object"},
                 {"type": "any"}, id="with-client-tools-any-tool-ends-the-turn"),
    pytest.param({"type": "json_object"}, {"tools": [WEATHER], "tool_choice": "none"},
                 {"type": "object"}, {"type": "tool", "name": "json_response"},
                 id="client-tools-disabled"),
]


@pytest.mark.parametrize(("fmt", "fields", "schema", "choice"), RESPONSE_FORMAT_CASES)
def test_response_format_is_a_forced_answer_tool(fmt, fields, schema, choice):
    out = translate(response_format=fmt, **fields)
    answer = out["tools"][-1]
    assert answer["name"] == "json_response"
    assert answer["input_schema"] == schema
    assert out["tool_choice"] == choice


def test_text_response_format_changes_nothing():
    assert translate(response_format={"type": "text"}) == translate()


def test_a_client_tool_named_like_the_answer_tool_is_refused_in_json_mode():
    clash = {"type": "function", "function": {"name": "json_response"}}
    with pytest.raises(InvalidRequestError, match="json_response"):
        translate(tools=[clash], response_format={"type": "json_object"})
    assert translate(tools=[clash])["tools"][0]["name"] == "json_response"


def test_key_order_is_stable_for_prompt_caching():
    body = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "tools": [WEATHER], "stop": "x", "temperature": 0.1, "user": "u"}
    assert list(translate(**body)) == ["model", "max_tokens", "system", "messages", "tools",
                                       "stop_sequences", "temperature", "metadata"]


# --- response ---------------------------------------------------------------------------


def reply(content, stop_reason="end_turn", **extra):
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 4}, **extra}


def completion(data, json_mode=False):
    return _wire.chat_completion(data, model="gw", provider="my-anthropic",
                                 json_mode=json_mode)


FINISH_CASES = [
    ("end_turn", False, "stop"), ("stop_sequence", False, "stop"),
    ("max_tokens", False, "length"), ("max_tokens", True, "length"),
    ("tool_use", True, "tool_calls"), ("tool_use", False, "stop"),
    ("refusal", False, "stop"), ("model_context_window_exceeded", False, "length"),
    ("pause_turn", False, "length"), (None, False, "stop"),
]


@pytest.mark.parametrize(("stop_reason", "has_tools", "finish"), FINISH_CASES)
def test_finish_reasons(stop_reason, has_tools, finish):
    assert _wire.finish_reason(stop_reason, has_tools) == finish


def test_unknown_stop_reason_is_logged(caplog):
    assert _wire.finish_reason("brand_new", False) == "stop"
    assert "brand_new" in caplog.text


def test_text_answer():
    body = completion(reply([{"type": "text", "text": "Hello, "},
                             {"type": "text", "text": "world"}]))
    assert body["object"] == "chat.completion"
    assert body["id"] == "msg_1"
    assert body["model"] == MODEL
    assert body["provider"] == "my-anthropic"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello, world",
                                 "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}


def test_tool_only_answer_has_null_content():
    body = completion(reply([{"type": "tool_use", "id": "toolu_1", "name": "f",
                              "input": {"a": [1, "x"]}}], "tool_use"))
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {
        "name": "f", "arguments": '{"a":[1,"x"]}'}}]


def test_json_mode_answer_is_unwrapped_into_content():
    body = completion(reply([{"type": "tool_use", "id": "toolu_1", "name": "json_response",
                              "input": {"answer": 42}}], "tool_use"), json_mode=True)
    choice = body["choices"][0]
    assert choice["message"]["content"] == '{"answer":42}'
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_json_mode_with_a_real_tool_call_keeps_it():
    body = completion(reply([{"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                              "input": {"city": "Oslo"}}], "tool_use"), json_mode=True)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["id"] == "toolu_2"


def test_refusal_sets_message_refusal():
    body = completion(reply([{"type": "text", "text": "Hello.."}], "refusal",
                            stop_details={"type": "refusal", "category": "cyber",
                                          "explanation": "declined: cyber harm"}))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["refusal"] == "declined: cyber harm"
    assert choice["message"]["content"] == "Hello.."
    plain = completion(reply([], "refusal"))["choices"][0]["message"]["refusal"]
    assert "declined" in plain


def test_thinking_becomes_reasoning_content_and_blocks():
    thinking = {"type": "thinking", "thinking": "2+2=4", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    body = completion(reply([thinking, redacted, {"type": "text", "text": "4"}]))
    message = body["choices"][0]["message"]
    assert message["content"] == "4"
    assert message["reasoning_content"] == "2+2=4"
    assert message["thinking_blocks"] == [thinking, redacted]


USAGE_CASES = [
    ({"input_tokens": 10, "output_tokens": 2},
     {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}),
    ({"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 90,
      "cache_creation_input_tokens": 0},
     {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102,
      "prompt_tokens_details": {"cached_tokens": 90}, "cache_read_input_tokens": 90}),
    ({"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 500},
     {"prompt_tokens": 503, "completion_tokens": 1, "total_tokens": 504,
      "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 500},
      "cache_creation_input_tokens": 500}),
    (None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
]


@pytest.mark.parametrize(("usage", "expected"), USAGE_CASES)
def test_usage_counts_cache_tokens_in_prompt_tokens(usage, expected):
    assert _wire.openai_usage(usage) == expected


@pytest.mark.parametrize(("kind", "status", "retryable"), [
    ("overloaded_error", 503, True), ("api_error", 500, True),
    ("rate_limit_error", 429, True), ("invalid_request_error", 400, False),
    ("brand_new_error", 502, True),
])
def test_stream_error_events(kind, status, retryable):
    err = _wire.event_error({"type": "error", "error": {"type": kind, "message": "boom"}},
                            "claude")
    assert (err.status, err.retryable) == (status, retryable)
    assert err.message.startswith("claude: boom")
