import pytest
from ferro.sse import iter_lines, iter_sse
from ferro.streaming import StreamAssembler
from ferro.types import Usage


class Body:
    """A response body delivered in the given pieces, as aiohttp's iter_any() would."""

    def __init__(self, *pieces):
        self.pieces = pieces

    async def iter_any(self):
        for piece in self.pieces:
            yield piece


async def events(*pieces):
    return [e async for e in iter_sse(Body(*pieces))]


async def test_sse_events_split_anywhere_and_crlf():
    raw = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\r\n\r\ndata: x\r\n\r\n"
    whole = await events(raw)
    assert whole == [("message_start", b'{"a":1}'), (None, b"x")]
    for cut in range(1, len(raw)):
        assert await events(raw[:cut], raw[cut:]) == whole


async def test_sse_multiline_data_bare_event_and_unterminated_tail():
    got = await events(b"data: a\ndata: b\n\nevent: ping\n\ndata:no-space\n\ndata: tail")
    assert got == [(None, b"a\nb"), ("ping", None), (None, b"no-space"), (None, b"tail")]


async def test_sse_event_larger_than_any_line_buffer():
    big = b"x" * 300_000
    assert await events(b"data: " + big[:1000], big[1000:] + b"\n\n") == [(None, big)]


async def test_lines_of_any_length():
    assert [x async for x in iter_lines(Body(b'{"a"', b':1}\n\n{"b":2}'))] == [b'{"a":1}', b'{"b":2}']


@pytest.mark.parametrize("usage", [None, Usage(3, 4, 7)])
def test_assembler_rebuilds_text_tool_calls_and_reasoning(usage):
    asm = StreamAssembler()
    head = {"id": "c1", "created": 5, "model": "m"}
    for delta, finish in [
        ({"role": "assistant", "reasoning_content": "think "}, None),
        ({"reasoning_content": "more", "content": "Hel"}, None),
        ({"content": "lo", "tool_calls": [{"index": 0, "id": "t1", "type": "function",
                                           "function": {"name": "f", "arguments": "{\"a\""}}]},
         None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, None),
        ({}, "tool_calls"),
    ]:
        asm.add({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    body = asm.response("p", usage).body
    assert body["id"] == "c1" and body["object"] == "chat.completion" and body["provider"] == "p"
    message = body["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["reasoning_content"] == "think more"
    assert message["tool_calls"] == [{"id": "t1", "type": "function",
                                      "function": {"name": "f", "arguments": "{\"a\":1}"}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body.get("usage") == (usage.to_openai() if usage else None)
