"""OpenAI chat request -> Gemini GenerateContentRequest (ferro_provider_gemini._wire)."""

import pytest
from ferro import InvalidRequestError
from ferro_provider_gemini._wire import (
    SKIP_SIGNATURE,
    generation_config,
    to_gemini,
    to_gemini_contents,
    tool_config,
)

PNG = "iVBORw0KGgo="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}


def contents(messages, model="gemini-2.5-flash"):
    return to_gemini_contents(messages, provider="gemini", model=model)


def call(id_, name, args, **extra):
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": args}, **extra}


def test_system_and_developer_messages_are_joined_in_order():
    system, turns = contents([
        {"role": "system", "content": "A."},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": [{"type": "text", "text": "B."}]},
    ])
    assert system == "A.\n\nB."
    assert turns == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_user_parts_text_image_audio_and_pdf():
    _, turns = contents([{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}",
                                            "detail": "high"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"filename": "a.pdf",
                                  "file_data": "data:application/pdf;base64,JVBERg=="}},
    ]}])
    assert turns[0]["parts"] == [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
    ]


@pytest.mark.parametrize(("part", "words"), [
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, "remote URL"),
    ({"type": "file", "file": {"file_id": "file-1"}}, "file_id"),
    ({"type": "video_url", "video_url": {"url": "x"}}, "'video_url'"),
])
def test_parts_gemini_cannot_take_are_refused(part, words):
    with pytest.raises(InvalidRequestError) as info:
        contents([{"role": "user", "content": [part]}])
    assert info.value.status == 400
    assert words in info.value.message


def test_tool_round_trip_names_results_and_merges_consecutive_results():
    _, turns = contents([
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            call("call_a", "get_weather", '{"city":"Paris"}'),
            call("call_b", "get_weather", '{"city":"Rome"}')]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp":21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "sunny"},
        {"role": "user", "content": "Thanks"},
    ])
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert turns[1]["parts"] == [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_b"}},
    ]
    assert turns[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21},
                              "id": "call_a"}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"},
                              "id": "call_b"}},
        {"text": "Thanks"},
    ]


def test_synthetic_ids_are_not_sent_back_to_gemini():
    _, turns = contents([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None,
         "tool_calls": [call("call_gemini_0123456789abcdef0123", "f", "{}")]},
        {"role": "tool", "tool_call_id": "call_gemini_0123456789abcdef0123", "content": "ok"},
    ])
    assert turns[1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]
    assert turns[2]["parts"] == [{"functionResponse": {"name": "f",
                                                       "response": {"output": "ok"}}}]


def test_thought_signatures_go_back_and_gemini_3_gets_the_documented_placeholder():
    history = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("c1", "f", "{}", extra_content={"google": {"thought_signature": "c2lnMQ=="}}),
            call("c2", "g", "{}")]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        {"role": "tool", "tool_call_id": "c2", "content": "2"},
        {"role": "assistant", "content": None, "tool_calls": [call("c3", "f", "{}"),
                                                              call("c4", "g", "{}")]},
        {"role": "tool", "tool_call_id": "c3", "content": "3"},
        {"role": "tool", "tool_call_id": "c4", "content": "4"},
    ]
    _, turns = contents(history, model="gemini-3-pro-preview")
    first, second = turns[1]["parts"], turns[3]["parts"]
    assert first[0]["thoughtSignature"] == "c2lnMQ=="
    assert "thoughtSignature" not in first[1]
    assert second[0]["thoughtSignature"] == SKIP_SIGNATURE  # only the first call of a step
    assert "thoughtSignature" not in second[1]
    _, older = contents(history, model="gemini-2.5-flash")
    assert "thoughtSignature" not in older[3]["parts"][0]  # 2.5 does not require one


def test_a_tool_result_for_an_unknown_call_is_a_400():
    with pytest.raises(InvalidRequestError) as info:
        contents([{"role": "user", "content": "x"},
                  {"role": "tool", "tool_call_id": "nope", "content": "1"}])
    assert "tool_call_id" in info.value.message


def test_legacy_function_call_and_function_result():
    _, turns = contents([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "f", "arguments": '{"a":1}'}},
        {"role": "function", "name": "f", "content": '{"r":2}'},
    ])
    assert turns[1]["parts"] == [{"functionCall": {"name": "f", "args": {"a": 1}}}]
    assert turns[2]["parts"] == [{"functionResponse": {"name": "f", "response": {"r": 2}}}]


def test_invalid_tool_call_arguments_are_a_400():
    with pytest.raises(InvalidRequestError):
        contents([{"role": "assistant", "content": None,
                   "tool_calls": [call("c", "f", "{not json")]}])


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "a"}},
        {"type": "function", "function": {"name": "b"}}]}},
     {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}),
])
def test_tool_choice(choice, expected):
    assert tool_config({"tool_choice": choice}, provider="gemini") == {
        "functionCallingConfig": expected}


@pytest.mark.parametrize(("body", "expected"), [
    ({"temperature": 0.3, "top_p": 0.9, "seed": 7, "max_tokens": 100},
     {"temperature": 0.3, "topP": 0.9, "seed": 7, "maxOutputTokens": 100}),
    ({"max_completion_tokens": 64, "max_tokens": 10}, {"maxOutputTokens": 64}),
    ({"stop": "END"}, {"stopSequences": ["END"]}),
    ({"stop": ["a", "b"], "n": 3}, {"stopSequences": ["a", "b"], "candidateCount": 3}),
    ({"n": 1}, {}),
    ({"presence_penalty": 0.5, "frequency_penalty": -0.5},
     {"presencePenalty": 0.5, "frequencyPenalty": -0.5}),
    ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
    ({"response_format": {"type": "text"}}, {}),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": True,
      "schema": {"type": "object", "properties": {"b": {"type": "string"},
                                                  "a": {"type": ["integer", "null"]}},
                 "required": ["b", "a"], "additionalProperties": False}}}},
     {"responseMimeType": "application/json", "responseSchema": {
         "type": "object", "properties": {"b": {"type": "string"},
                                          "a": {"type": "integer", "nullable": True}},
         "required": ["b", "a"], "propertyOrdering": ["b", "a"]}}),
    ({"user": "u-1", "stream_options": {"include_usage": True}, "parallel_tool_calls": True,
      "service_tier": "auto", "store": False, "metadata": {"a": "b"}}, {}),
])
def test_generation_config(body, expected):
    assert generation_config(body, provider="gemini") == expected


@pytest.mark.parametrize(("model", "effort", "expected"), [
    ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
    ("gemini-2.5-pro", "medium", {"thinkingBudget": 8192}),
    ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
    ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
    ("gemini-3-pro-preview", "high", {"thinkingLevel": "high"}),
    ("gemini-3-flash-preview", "none", {"thinkingLevel": "minimal"}),
])
def test_reasoning_effort_becomes_thinking_config(model, effort, expected):
    config = generation_config({"reasoning_effort": effort}, provider="gemini", model=model)
    assert config == {"thinkingConfig": expected}


@pytest.mark.parametrize(("body", "words"), [
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"123": 5}}, "logit_bias"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"response_format": {"type": "grammar"}}, "response_format"),
])
def test_fields_gemini_cannot_express_are_refused(body, words):
    with pytest.raises(InvalidRequestError) as info:
        generation_config(body, provider="gemini")
    assert info.value.code == "unsupported_parameter"
    assert words in info.value.message


def test_json_schema_mode_sends_schemas_unchanged():
    schema = {"type": "object", "properties": {"m": {"type": "object",
                                                     "additionalProperties": True}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    out = to_gemini(body, provider="gemini", model="gemini-2.5-flash", schema_mode="json_schema")
    assert out["tools"] == [{"functionDeclarations": [{"name": "f",
                                                       "parametersJsonSchema": schema}]}]
    assert out["generationConfig"]["responseJsonSchema"] == schema
    with pytest.raises(InvalidRequestError):  # the default mode refuses the free-form object
        to_gemini(body, provider="gemini", model="gemini-2.5-flash")


def test_whole_request():
    body = {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "system", "content": "Be terse."},
                     {"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER, {"type": "function", "function": {"name": "now"}}],
        "tool_choice": "auto", "temperature": 0.1,
    }
    assert to_gemini(body, provider="gemini", model="gemini-2.5-flash",
                     safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT",
                                       "threshold": "BLOCK_NONE"}]) == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather for a city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}},
            {"name": "now"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"temperature": 0.1},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }


def test_gemma_gets_the_system_text_at_the_start_of_the_first_user_turn():
    body = {"model": "gemma-3-27b-it", "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]}
    out = to_gemini(body, provider="gemini", model="gemma-3-27b-it")
    assert "systemInstruction" not in out
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Be terse."},
                                                          {"text": "Hi"}]}]


def test_non_function_tools_are_refused():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "custom", "custom": {"name": "grammar"}}]}
    with pytest.raises(InvalidRequestError) as info:
        to_gemini(body, provider="gemini", model="gemini-2.5-flash")
    assert "'custom'" in info.value.message
