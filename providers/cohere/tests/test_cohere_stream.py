"""``StreamTranslator``: documented Cohere v2 stream events in, OpenAI chunks out
(https://docs.cohere.com/docs/streaming, https://docs.cohere.com/reference/chat-stream)."""

import pytest
from ferro import UpstreamError
from ferro_provider_cohere._stream import StreamTranslator


def start(id_="gen-1"):
    return {"id": id_, "type": "message-start", "delta": {"message": {
        "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}


def text(t, **extra):
    return {"type": "content-delta", "index": 0,
            "delta": {"message": {"content": {"text": t}}}, **extra}


def plan(t):
    return {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": t}}}


def call_start(index, id_, name):
    return {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": {
        "id": id_, "type": "function", "function": {"name": name, "arguments": ""}}}}}


def call_delta(index, args):
    return {"type": "tool-call-delta", "index": index,
            "delta": {"message": {"tool_calls": {"function": {"arguments": args}}}}}


def end(reason="COMPLETE", **delta):
    return {"type": "message-end", "delta": {
        "finish_reason": reason,
        "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 2},
                  "tokens": {"input_tokens": 40, "output_tokens": 2}}, **delta}}


def run(events, **kw):
    translator = StreamTranslator("command-a-03-2025", "co", **kw)
    chunks = [c.as_dict() for e in events for c in translator.feed(e)]
    return translator, chunks


def deltas(chunks):
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_text_stream():
    translator, chunks = run([
        start(), {"type": "content-start", "index": 0, "delta": {"message": {
            "content": {"type": "text", "text": ""}}}},
        text("Hel"), text("lo"), {"type": "content-end", "index": 0}, end()])
    assert translator.done
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "gen-1"
               and c["model"] == "command-a-03-2025" for c in chunks)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hel"},
                              {"content": "lo"}, {}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 40, "completion_tokens": 2,
                                   "total_tokens": 42}


def test_tool_calls_stream_id_and_name_first_then_indexed_fragments():
    _, chunks = run([
        start(), plan("I will "), plan("check."),
        call_start(0, "get_weather_1", "get_weather"), call_delta(0, "{\"city\":"),
        call_delta(0, "\"Paris\"}"), {"type": "tool-call-end", "index": 0},
        call_start(1, "get_time_2", "get_time"), call_delta(1, "{}"),
        {"type": "tool-call-end", "index": 1}, end("TOOL_CALL")])
    got = deltas(chunks)
    assert got[1:3] == [{"content": "I will "}, {"content": "check."}]
    assert got[3] == {"tool_calls": [{"index": 0, "id": "get_weather_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]}
    assert got[4:6] == [{"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]},
                        {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}]
    assert got[6]["tool_calls"][0]["index"] == 1
    assert got[6]["tool_calls"][0]["id"] == "get_time_2"
    assert got[7] == {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_cohere_tool_indexes_become_zero_based_in_order():
    _, chunks = run([start(), call_start(3, "a", "f"), call_delta(3, "{}"),
                     call_start(5, "b", "g"), call_delta(5, "{}"), end("TOOL_CALL")])
    indexes = [d["tool_calls"][0]["index"] for d in deltas(chunks) if "tool_calls" in d]
    assert indexes == [0, 0, 1, 1]


def test_parallel_tool_calls_false_drops_later_calls():
    _, chunks = run([start(), call_start(0, "a", "f"), call_delta(0, "{}"),
                     call_start(1, "b", "g"), call_delta(1, "{\"x\":1}"), end("TOOL_CALL")],
                    max_tool_calls=1)
    calls = [d["tool_calls"][0] for d in deltas(chunks) if "tool_calls" in d]
    assert [c["index"] for c in calls] == [0, 0]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_thinking_streams_as_reasoning_content():
    _, chunks = run([start(), {"type": "content-start", "index": 0, "delta": {"message": {
        "content": {"type": "thinking", "thinking": ""}}}},
        {"type": "content-delta", "index": 0,
         "delta": {"message": {"content": {"thinking": "Hmm."}}}},
        text("42"), end()])
    assert deltas(chunks)[1:3] == [{"reasoning_content": "Hmm."}, {"content": "42"}]


def test_logprobs_ride_on_their_content_chunk():
    _, chunks = run([start(), text("Hi", logprobs={"text": "Hi", "token_ids": [5],
                                                   "logprobs": [-0.1]}), end()])
    assert chunks[1]["choices"][0]["logprobs"]["content"][0]["token"] == "Hi"
    assert chunks[1]["choices"][0]["logprobs"]["content"][0]["logprob"] == -0.1


@pytest.mark.parametrize(("reason", "openai"), [
    ("MAX_TOKENS", "length"), ("STOP_SEQUENCE", "stop"), ("COMPLETE", "stop")])
def test_finish_reasons(reason, openai):
    _, chunks = run([start(), text("x"), end(reason)])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == openai


@pytest.mark.parametrize("final", [
    end("ERROR", error="internal failure"), end("TIMEOUT"), end("COMPLETE", error="boom")])
def test_failed_generation_raises_instead_of_finishing(final):
    translator = StreamTranslator("m", "co")
    translator.feed(start())
    translator.feed(text("partial"))
    with pytest.raises(UpstreamError) as info:
        translator.feed(final)
    assert info.value.status == 502
    assert info.value.retryable
    assert not translator.done


def test_an_error_body_mid_stream_raises():
    translator = StreamTranslator("m", "co")
    translator.feed(start())
    with pytest.raises(UpstreamError, match="overloaded"):
        translator.feed({"id": "x", "message": "overloaded"})


def test_no_usage_chunk_without_usage():
    _, chunks = run([start(), text("x"), {"type": "message-end",
                                          "delta": {"finish_reason": "COMPLETE"}}])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any(c.get("usage") for c in chunks)


def test_citations_and_unknown_events_are_skipped():
    _, chunks = run([start(), text("Gym"), {"type": "citation-start", "index": 0, "delta": {
        "message": {"citations": {"start": 0, "end": 3, "text": "Gym", "sources": []}}}},
        {"type": "citation-end", "index": 0}, {"type": "debug", "prompt": "..."},
        {"type": "something-new"}, end()])
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Gym"}, {}]


def test_tool_call_delta_before_any_start_is_malformed():
    translator = StreamTranslator("m", "co")
    translator.feed(start())
    with pytest.raises(UpstreamError) as info:
        translator.feed(call_delta(0, "{}"))
    assert info.value.status == 502
