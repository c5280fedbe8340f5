"""json_schema emulated with one forced tool (ferro.json_tool)."""

import copy

import orjson
import pytest
from ferro import ChatChunk, InvalidRequestError, RawFrames, json_tool
from ferro.testing import sse_body

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
          "required": ["city"], "additionalProperties": False}
BODY = {"model": "m", "messages": [{"role": "user", "content": "where?"}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}}}
FORCED = {"type": "function", "function": {"name": "json_response"}}


@pytest.mark.parametrize(("response_format", "wanted"), [
    ({"type": "json_schema", "json_schema": {"schema": SCHEMA}}, True),
    ({"type": "json_object"}, False),
    ({"type": "text"}, False),
    (None, False),
])
def test_wanted_only_for_json_schema(response_format, wanted):
    assert json_tool.wanted({"response_format": response_format}) is wanted


def test_request_gets_one_forced_tool_with_the_schema():
    before = copy.deepcopy(BODY)
    out = json_tool.request_body({**BODY, "tool_choice": "auto", "temperature": 0}, "p")
    assert "response_format" not in out
    assert out["tool_choice"] == FORCED
    [tool] = out["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "json_response"
    assert tool["function"]["parameters"] == SCHEMA
    assert "place" in tool["function"]["description"]
    assert out["temperature"] == 0 and out["messages"] == BODY["messages"]
    assert before == BODY  # the client's body is never mutated


def test_a_missing_schema_is_any_object():
    out = json_tool.request_body({**BODY, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x"}}}, "p")
    assert out["tools"][0]["function"]["parameters"] == {"type": "object"}


@pytest.mark.parametrize(("extra", "named"), [
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "together with tools"),
    ({"functions": [{"name": "f"}]}, "together with tools"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "n", "schema": {"type": "array", "items": {"type": "string"}}}}},
     "root is not an object"),
])
def test_what_cannot_be_emulated_is_a_400_naming_it(extra, named):
    with pytest.raises(InvalidRequestError) as info:
        json_tool.request_body({**BODY, **extra}, "groq")
    assert info.value.status == 400
    assert named in info.value.message and "groq" in info.value.message


def call(arguments, name="json_response", call_id="call_1"):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def test_answer_tool_call_becomes_content():
    answer = {"id": "c1", "object": "chat.completion", "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None,
                    "tool_calls": [call('{"city":"Paris"}')]}}], "usage": {"total_tokens": 3}}
    before = copy.deepcopy(answer)
    out = json_tool.unwrap_answer(answer)
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"city":"Paris"}'}
    assert choice["finish_reason"] == "stop"
    assert out["usage"] == {"total_tokens": 3} and out["id"] == "c1"
    assert answer == before


def test_answer_without_the_tool_call_keeps_its_text():
    answer = {"choices": [{"index": 0, "finish_reason": "length",
                           "message": {"role": "assistant", "content": '{"ci'}}]}
    assert json_tool.unwrap_answer(answer) == answer


def test_only_the_first_answer_call_counts():
    answer = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "",
        "tool_calls": [call("{}", name="other"), call('{"city":"Oslo"}'),
                       call('{"city":"Rome"}', call_id="call_2")]}}]}
    message = json_tool.unwrap_answer(answer)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": '{"city":"Oslo"}'}


def delta_chunk(delta, finish=None, index=0):
    return {"id": "c1", "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def tool_delta(index, arguments, name=None):
    fn = {"arguments": arguments}
    if name:
        fn["name"] = name
    entry = {"index": index, "function": fn}
    if name:
        entry |= {"id": f"call_{index}", "type": "function"}
    return {"tool_calls": [entry]}


STREAM = [
    delta_chunk({"role": "assistant", "content": None, **tool_delta(0, "", "json_response")}),
    delta_chunk(tool_delta(0, '{"city":')),
    delta_chunk(tool_delta(0, '"Paris"}')),
    delta_chunk({}, "tool_calls"),
    {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 5}},
]


def test_stream_argument_fragments_become_content_deltas():
    state = json_tool.StreamState()
    out = [json_tool.unwrap_chunk(c, state) for c in copy.deepcopy(STREAM)]
    deltas = [c["choices"][0]["delta"] for c in out[:4]]
    assert deltas == [{"role": "assistant", "content": None}, {"content": '{"city":'},
                      {"content": '"Paris"}'}, {}]
    assert out[3]["choices"][0]["finish_reason"] == "stop"
    assert out[4] == STREAM[4]
    assert not any("tool_calls" in d for d in deltas)


def test_stream_state_drops_a_second_parallel_call():
    state = json_tool.StreamState()
    chunks = [delta_chunk(tool_delta(0, '{"a":1}', "json_response")),
              delta_chunk(tool_delta(1, '{"b":2}', "json_response")),
              delta_chunk(tool_delta(1, "}"))]
    text = "".join(json_tool.unwrap_chunk(c, state)["choices"][0]["delta"].get("content") or ""
                   for c in chunks)
    assert text == '{"a":1}'


def test_stream_states_are_independent():
    first, second = json_tool.StreamState(), json_tool.StreamState()
    json_tool.unwrap_chunk(delta_chunk(tool_delta(2, "", "json_response")), first)
    out = json_tool.unwrap_chunk(delta_chunk(tool_delta(0, '{"x":1}', "json_response")), second)
    assert out["choices"][0]["delta"] == {"content": '{"x":1}'}
    assert first.calls == {0: 2} and second.calls == {0: 0}


async def pieces(*items):
    for item in items:
        yield item


async def test_unwrap_stream_parses_only_what_holds_tool_calls():
    plain = RawFrames(sse_body(delta_chunk({"role": "assistant", "content": ""})), more=True)
    calls = RawFrames(sse_body(*STREAM[:3]), more=False)
    end = ChatChunk(raw=orjson.dumps(STREAM[3]))
    usage = ChatChunk(STREAM[4])
    out = [item async for item in json_tool.unwrap_stream(pieces(plain, calls, end, usage))]
    assert out[0] is plain  # no tool call: relayed as it came
    assert [c.more for c in out[1:4]] == [True, True, False]
    content = "".join(c.as_dict()["choices"][0]["delta"].get("content") or "" for c in out[1:5])
    assert content == '{"city":"Paris"}'
    assert out[4].as_dict()["choices"][0]["finish_reason"] == "stop"
    assert out[5].as_dict()["usage"] == {"total_tokens": 5}


async def test_closing_the_unwrapped_stream_closes_the_upstream_one():
    closed = []

    async def upstream():
        try:
            yield ChatChunk(delta_chunk(tool_delta(0, "{", "json_response")))
            yield ChatChunk(delta_chunk(tool_delta(0, "}")))
        finally:
            closed.append(True)

    stream = json_tool.unwrap_stream(upstream())
    first = await stream.__anext__()
    assert first.as_dict()["choices"][0]["delta"] == {"content": "{"}
    await stream.aclose()
    assert closed == [True]
