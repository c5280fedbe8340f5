"""Streams: Anthropic events in, OpenAI chunks out (through a real local server)."""

import asyncio

import aiohttp
import orjson
import pytest
from aiohttp import web
from ferro import ChatRequest, UpstreamError
from ferro.testing import collect, make_provider, sse_body
from ferro_provider_anthropic._stream import StreamState

MODEL = "claude-sonnet-4-5"


def events(*payloads):
    return sse_body(*payloads, event_names=[p["type"] for p in payloads])


def start(**usage):
    return {"type": "message_start", "message": {
        "id": "msg_S", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 1, **usage}}}


def block_start(index, block):
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index, **d):
    return {"type": "content_block_delta", "index": index, "delta": d}


def stop(index):
    return {"type": "content_block_stop", "index": index}


def message_end(stop_reason, output_tokens=9, **extra):
    return [{"type": "message_delta",
             "delta": {"stop_reason": stop_reason, "stop_sequence": None, **extra},
             "usage": {"output_tokens": output_tokens}},
            {"type": "message_stop"}]


def tool(index, tool_id, name):
    return block_start(index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}})


def args(index, fragment):
    return delta(index, type="input_json_delta", partial_json=fragment)


@pytest.fixture
async def stream_of(fake_upstream):
    """``await stream_of(sse_bytes, **request_fields)``: (chunks, the native request)."""
    async with aiohttp.ClientSession() as session:
        async def run(body, **fields):
            upstream = await fake_upstream({"POST /v1/messages": body})
            provider = make_provider("anthropic", {"api_key": "k", "base_url": upstream.url},
                                     session)
            request = ChatRequest({"model": MODEL, "stream": True,
                                   "messages": [{"role": "user", "content": "hi"}], **fields})
            chunks = await collect(provider.stream(request))
            return chunks, upstream.requests[0].json()

        yield run


def choices(chunks):
    return [c["choices"][0] for c in chunks if c["choices"]]


def tool_deltas(chunks):
    return [t for ch in choices(chunks) for t in ch["delta"].get("tool_calls") or ()]


def assemble_tool_calls(chunks):
    calls = {}
    for t in tool_deltas(chunks):
        slot = calls.setdefault(t["index"], {"id": None, "name": "", "arguments": ""})
        if "id" in t:
            assert slot["arguments"] == "", "id and name must come before the arguments"
            slot["id"], slot["name"] = t["id"], t["function"]["name"]
        slot["arguments"] += t["function"].get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


async def test_parallel_tool_calls_are_indexed_by_call_not_by_block(stream_of):
    body = events(
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="text_delta", text="Let me check."),
        stop(0),
        tool(1, "toolu_A", "get_weather"),
        args(1, ""),
        args(1, '{"ci'),
        args(1, 'ty": "Par'),
        args(1, 'is"}'),
        stop(1),
        tool(2, "toolu_B", "get_time"),
        args(2, '{"tz": "CET"}'),
        stop(2),
        *message_end("tool_use", 40),
    )
    chunks, sent = await stream_of(body, tools=[{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object"}}}])
    assert sent["stream"] is True
    assert sorted({t["index"] for t in tool_deltas(chunks)}) == [0, 1]
    first = tool_deltas(chunks)[0]
    assert first == {"index": 0, "id": "toolu_A", "type": "function",
                     "function": {"name": "get_weather", "arguments": ""}}
    calls = assemble_tool_calls(chunks)
    assert calls == [
        {"id": "toolu_A", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "toolu_B", "name": "get_time", "arguments": '{"tz": "CET"}'}]
    assert all(orjson.loads(c["arguments"]) for c in calls)
    text = "".join(ch["delta"].get("content") or "" for ch in choices(chunks))
    assert text == "Let me check."
    finishes = [ch["finish_reason"] for ch in choices(chunks) if ch["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 40
    assert {c["id"] for c in chunks} == {"msg_S"}


async def test_first_chunk_has_the_role_and_usage_counts_cache_tokens(stream_of):
    body = events(start(cache_creation_input_tokens=100, cache_read_input_tokens=1000),
                  block_start(0, {"type": "text", "text": ""}),
                  delta(0, type="text_delta", text="hi"), stop(0), *message_end("end_turn", 3))
    chunks, _ = await stream_of(body)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1120, "completion_tokens": 3, "total_tokens": 1123,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 100},
        "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("pause_turn", "length"),
    ("refusal", "stop"), ("something_new", "stop"),
])
async def test_stop_reasons_become_finish_reasons(stream_of, stop_reason, finish):
    body = events(start(), *message_end(stop_reason))
    chunks, _ = await stream_of(body)
    assert [ch["finish_reason"] for ch in choices(chunks) if ch["finish_reason"]] == [finish]


async def test_truncation_inside_a_tool_call_stays_length(stream_of):
    body = events(start(), tool(0, "toolu_A", "f"), args(0, '{"a": '), stop(0),
                  *message_end("max_tokens"))
    chunks, _ = await stream_of(body)
    assert choices(chunks)[-1]["finish_reason"] == "length"


async def test_refusal_is_stop_with_a_refusal_message(stream_of):
    explanation = "This request was declined because it could enable cyber harm."
    body = events(start(), block_start(0, {"type": "text", "text": ""}),
                  delta(0, type="text_delta", text="Hello.."), stop(0),
                  *message_end("refusal", stop_details={
                      "type": "refusal", "category": "cyber", "explanation": explanation}))
    chunks, _ = await stream_of(body)
    last = choices(chunks)[-1]
    assert last["finish_reason"] == "stop"
    assert last["delta"]["refusal"] == explanation


async def test_response_format_stream_unwraps_the_answer_tool_into_content(stream_of):
    body = events(start(), tool(0, "toolu_J", "json_response"), args(0, '{"answer"'),
                  args(0, ": 42}"), stop(0), *message_end("tool_use"))
    chunks, sent = await stream_of(body, response_format={"type": "json_object"})
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert tool_deltas(chunks) == []
    content = "".join(ch["delta"].get("content") or "" for ch in choices(chunks))
    assert orjson.loads(content) == {"answer": 42}
    assert choices(chunks)[-1]["finish_reason"] == "stop"


async def test_thinking_streams_as_reasoning_content_with_its_signature(stream_of):
    body = events(start(), block_start(0, {"type": "thinking", "thinking": ""}),
                  delta(0, type="thinking_delta", thinking="Let me "),
                  delta(0, type="thinking_delta", thinking="think."),
                  delta(0, type="signature_delta", signature="sig=="), stop(0),
                  block_start(1, {"type": "text", "text": ""}),
                  delta(1, type="text_delta", text="4"), stop(1), *message_end("end_turn"))
    chunks, sent = await stream_of(body, reasoning_effort="low")
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    deltas = [ch["delta"] for ch in choices(chunks)]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "Let me think."
    blocks = [b for d in deltas for b in d.get("thinking_blocks") or ()]
    assert blocks == [{"type": "thinking", "thinking": "Let me think.", "signature": "sig=="}]
    assert "".join(d.get("content") or "" for d in deltas) == "4"


async def test_mid_stream_overloaded_error_is_a_retryable_upstream_error(stream_of):
    body = events(start(), block_start(0, {"type": "text", "text": ""}),
                  delta(0, type="text_delta", text="Hel"),
                  {"type": "error", "error": {"type": "overloaded_error",
                                              "message": "Overloaded"}})
    with pytest.raises(UpstreamError) as info:
        await stream_of(body)
    assert info.value.retryable
    assert info.value.status == 503
    assert "Overloaded" in info.value.message


async def test_mid_stream_invalid_request_error_is_not_retryable(stream_of):
    body = events(start(), {"type": "error", "error": {"type": "invalid_request_error",
                                                       "message": "bad"}})
    with pytest.raises(UpstreamError) as info:
        await stream_of(body)
    assert (info.value.status, info.value.retryable) == (400, False)


async def test_missing_message_stop_is_truncation_even_after_message_delta(stream_of):
    body = events(start(), block_start(0, {"type": "text", "text": ""}),
                  delta(0, type="text_delta", text="Hi"), stop(0),
                  *message_end("end_turn")[:1])
    with pytest.raises(UpstreamError) as info:
        await stream_of(body)
    assert info.value.code == "stream_truncated"
    assert "message_stop" in info.value.message


async def test_garbage_event_data_is_a_502(stream_of):
    with pytest.raises(UpstreamError) as info:
        await stream_of(sse_body(start(), b"{not json"))
    assert info.value.status == 502


async def test_events_split_across_network_reads(fake_upstream):
    body = events(start(), block_start(0, {"type": "text", "text": ""}),
                  *(delta(0, type="text_delta", text=w) for w in ("a", "b", "c")), stop(0),
                  *message_end("end_turn"))

    async def dribble(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(0, len(body), 7):
            await resp.write(body[i:i + 7])
            await asyncio.sleep(0)
        return resp

    upstream = await fake_upstream({"POST /v1/messages": dribble})
    async with aiohttp.ClientSession() as session:
        provider = make_provider("anthropic", {"api_key": "k", "base_url": upstream.url},
                                 session)
        chunks = await collect(provider.stream(ChatRequest(
            {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "x"}]})))
    assert "".join(ch["delta"].get("content") or "" for ch in choices(chunks)) == "abc"


def test_state_ignores_pings_and_unknown_events_and_blocks():
    state = StreamState(MODEL)
    assert state.feed({"type": "ping"}) is None
    assert state.feed({"type": "some_future_event", "x": 1}) is None
    assert state.feed(block_start(0, {"type": "server_tool_use", "id": "s", "name": "web"})) \
        is None
    assert state.feed(delta(0, type="citations_delta", citation={})) is None
    assert state.feed(args(5, '{"orphan": 1}')) is None
    assert state.tool_count == 0


def test_state_usage_merges_message_delta_over_message_start():
    state = StreamState(MODEL)
    state.feed(start(cache_read_input_tokens=4))
    state.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 15, "input_tokens": None}})
    assert state.openai_usage()["prompt_tokens"] == 24
    assert state.openai_usage()["completion_tokens"] == 15
    assert state.finish() == ({}, "stop")
