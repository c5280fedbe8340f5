"""Gemini GenerateContentResponse -> OpenAI chat.completion / chunks, and error bodies."""

import orjson
import pytest
from ferro import UpstreamError
from ferro_provider_gemini._answer import (
    StreamTranslator,
    finish_reason,
    to_chat_completion,
    tool_call_id,
    usage_of,
)
from ferro_provider_gemini._errors import error_facts


def candidate(parts, finish="STOP", index=None):
    out = {"content": {"role": "model", "parts": parts}}
    if finish:
        out["finishReason"] = finish
    if index is not None:
        out["index"] = index
    return out


def answer(data, **kw):
    return to_chat_completion(data, model="gemini-2.5-flash", provider="gemini", **kw)


@pytest.mark.parametrize(("native", "calls", "expected"), [
    ("STOP", False, "stop"),
    ("STOP", True, "tool_calls"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"),
    ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"),
    ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"),
])
def test_finish_reasons(native, calls, expected):
    assert finish_reason(native, calls, "gemini") == expected


@pytest.mark.parametrize(("native", "code"), [
    ("MALFORMED_FUNCTION_CALL", "malformed_function_call"),
    ("UNEXPECTED_TOOL_CALL", "malformed_function_call"),
    ("OTHER", "unknown_finish_reason"),
    ("SOMETHING_NEW", "unknown_finish_reason"),
])
def test_finish_reasons_that_are_errors_never_become_stop(native, code):
    with pytest.raises(UpstreamError) as info:
        finish_reason(native, False, "gemini")
    assert info.value.status == 502
    assert info.value.code == code
    assert info.value.retryable
    assert native in info.value.message


def test_usage_counts_thoughts_as_completion_and_cache_as_cached():
    usage = usage_of({"promptTokenCount": 100, "cachedContentTokenCount": 60,
                      "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                      "totalTokenCount": 150})
    assert usage == {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                     "prompt_tokens_details": {"cached_tokens": 60},
                     "completion_tokens_details": {"reasoning_tokens": 30}}
    assert usage_of(None) is None


def test_text_answer_skips_thoughts():
    body = answer({"responseId": "r1", "candidates": [candidate([
        {"text": "Let me think about greetings.", "thought": True},
        {"text": "Hello"}, {"text": ", world"}])],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2,
                          "totalTokenCount": 5}})
    assert body["id"] == "r1"
    assert body["object"] == "chat.completion"
    assert body["provider"] == "gemini"
    assert body["model"] == "gemini-2.5-flash"
    assert body["choices"] == [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                "message": {"role": "assistant", "content": "Hello, world"}}]
    assert body["usage"]["total_tokens"] == 5


def test_function_calls_become_tool_calls_with_stable_ids_and_signatures():
    data = {"responseId": "r2", "candidates": [candidate([
        {"text": "Checking both."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "g-7"}}])]}
    body = answer(data)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both."
    calls = choice["message"]["tool_calls"]
    assert calls[0] == {"id": tool_call_id("r2", 0, 0), "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        "extra_content": {"google": {"thought_signature": "c2ln"}}}
    assert calls[1]["id"] == "g-7"  # Gemini's own id is kept
    assert orjson.loads(calls[1]["function"]["arguments"]) == {"city": "Rome"}
    assert answer(data)["choices"][0]["message"]["tool_calls"][0]["id"] == calls[0]["id"]
    other = answer({**data, "responseId": "r3"})["choices"][0]["message"]["tool_calls"][0]
    assert other["id"] != calls[0]["id"]


def test_parallel_tool_calls_false_keeps_the_first_call_only():
    data = {"candidates": [candidate([{"functionCall": {"name": "a", "args": {}}},
                                      {"functionCall": {"name": "b", "args": {}}}])]}
    calls = answer(data, single_call=True)["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["a"]


def test_several_candidates_become_indexed_choices():
    body = answer({"candidates": [candidate([{"text": "one"}]),
                                  candidate([{"text": "two"}], "MAX_TOKENS", index=1)]}, n=2)
    assert [(c["index"], c["message"]["content"], c["finish_reason"])
            for c in body["choices"]] == [(0, "one", "stop"), (1, "two", "length")]


def test_a_blocked_prompt_is_a_content_filter_answer():
    body = answer({"promptFeedback": {"blockReason": "SAFETY"},
                   "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}})
    choice = body["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert "SAFETY" in choice["message"]["refusal"]
    assert body["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize("data", [{}, {"candidates": []}, [], "x"])
def test_an_answer_without_candidates_is_a_502(data):
    with pytest.raises(UpstreamError) as info:
        answer(data)
    assert info.value.status == 502


def test_image_output_is_an_error_not_a_silent_drop():
    with pytest.raises(UpstreamError) as info:
        answer({"candidates": [candidate([{"inlineData": {"mimeType": "image/png",
                                                          "data": "AA=="}}])]})
    assert "image/png" in info.value.message


# --- streams --------------------------------------------------------------------------------


def feed_all(events, **kw):
    translator = StreamTranslator(model="gemini-2.5-flash", provider="gemini", created=1, **kw)
    chunks = [c.data for e in events for c in translator.feed(e)]
    return translator, chunks


def deltas(chunks, index=0):
    return [ch["delta"] for c in chunks for ch in c["choices"] if ch["index"] == index]


def test_stream_text_then_finish_then_cumulative_usage_once():
    events = [
        {"responseId": "s1", "candidates": [candidate([{"text": "Hel"}], None)],
         "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}},
        {"responseId": "s1", "candidates": [candidate([{"text": "thinking", "thought": True},
                                                       {"text": "lo"}], None)]},
        {"responseId": "s1", "candidates": [candidate([{"text": "!"}], "STOP")],
         "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3,
                           "thoughtsTokenCount": 2, "totalTokenCount": 10}},
    ]
    translator, chunks = feed_all(events)
    assert all(c["id"] == "s1" and c["object"] == "chat.completion.chunk" for c in chunks)
    assert deltas(chunks)[0] == {"role": "assistant", "content": "Hel"}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "Hello!"
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"]
            if ch["finish_reason"]] == ["stop"]
    assert translator.complete
    usage = translator.usage_chunk().data
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10,
                              "completion_tokens_details": {"reasoning_tokens": 2}}


def test_stream_tool_calls_id_and_name_first_then_arguments_same_ids_as_non_stream():
    parts = [{"functionCall": {"name": "a", "args": {"x": 1}}},
             {"functionCall": {"name": "b", "args": {}}}]
    events = [{"responseId": "s2", "candidates": [candidate(parts[:1], None)]},
              {"responseId": "s2", "candidates": [candidate(parts[1:], "STOP")]}]
    _, chunks = feed_all(events)
    calls = [tc for d in deltas(chunks) for tc in d.get("tool_calls") or ()]
    assert calls[0] == {"index": 0, "id": tool_call_id("s2", 0, 0), "type": "function",
                        "function": {"name": "a", "arguments": ""}}
    assert calls[1] == {"index": 0, "function": {"arguments": '{"x":1}'}}
    assert calls[2]["index"] == 1 and calls[2]["function"]["name"] == "b"
    assert calls[3] == {"index": 1, "function": {"arguments": "{}"}}
    assert deltas(chunks)[0]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    whole = answer({"responseId": "s2", "candidates": [candidate(parts)]})
    assert [c["id"] for c in whole["choices"][0]["message"]["tool_calls"]] == [
        calls[0]["id"], calls[2]["id"]]


def test_stream_without_finish_reason_is_incomplete():
    translator, _ = feed_all([{"candidates": [candidate([{"text": "Hel"}], None)]}])
    assert not translator.complete


def test_stream_with_two_candidates_is_complete_when_both_ended():
    translator, chunks = feed_all([
        {"candidates": [candidate([{"text": "a"}], None), candidate([{"text": "b"}], None, 1)]},
        {"candidates": [candidate([], "STOP")]},
    ], n=2)
    assert not translator.complete
    more = translator.feed({"candidates": [candidate([{"text": "c"}], "STOP", 1)]})
    assert translator.complete
    chunks += [c.data for c in more]
    assert "".join(d.get("content") or "" for d in deltas(chunks, 1)) == "bc"


def test_stream_blocked_prompt_ends_every_choice_with_content_filter():
    translator, chunks = feed_all([{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}])
    assert translator.complete
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert "PROHIBITED_CONTENT" in deltas(chunks)[0]["refusal"]


def test_stream_malformed_function_call_raises():
    with pytest.raises(UpstreamError):
        feed_all([{"candidates": [candidate([], "MALFORMED_FUNCTION_CALL")]}])


# --- error bodies ---------------------------------------------------------------------------


def err(code, status, message="m", details=()):
    return {"error": {"code": code, "message": message, "status": status,
                      "details": list(details)}}


@pytest.mark.parametrize(("http", "payload", "status", "code", "retry_after"), [
    (400, err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com"}]), 401, None, None),
    (429, err(429, "RESOURCE_EXHAUSTED", "quota", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.2s"}]),
     429, None, "38"),
    (400, err(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum "
              "number of tokens allowed (1048576)."), 400, "context_length_exceeded", None),
    (200, err(503, "UNAVAILABLE", "overloaded"), 503, None, None),
    (200, {"error": {"message": "x", "status": "RESOURCE_EXHAUSTED"}}, 429, None, None),
    (404, [err(404, "NOT_FOUND", "models/nope is not found")], 404, None, None),
    (502, b"<html>", 502, None, None),
])
def test_error_facts(http, payload, status, code, retry_after):
    facts = error_facts(http, payload)
    assert (facts.status, facts.code, facts.retry_after) == (status, code, retry_after)
