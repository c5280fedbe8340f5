"""What an upstream may send is bounded (``limits``): a whole answer, one stream event, a
whole stream and its duration. Past a limit a JSON answer is a clean 502, a stream ends
with an error event and ``[DONE]``; and the frame reader stays linear however an event is
cut into reads."""

import asyncio
import gzip

import orjson
import pytest
from aiohttp import web
from ferro.sse import FrameReader, StreamLimitError
from ferro.testing import sse_body

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                       "finish_reason": "stop"}]}
HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**HELLO, "stream": True}


def chunk(content):
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}


def config(*upstreams, **limits):
    names = [f"p{i}" for i in range(len(upstreams))]
    return {"strategy": {"mode": "fallback"},
            "providers": {n: {"type": "openai", "api_key": "k", "base_url": u.url}
                          for n, u in zip(names, upstreams, strict=True)},
            "targets": [{"virtual_key": n} for n in names],
            "limits": limits}


def events(text):
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


def streamed(pieces, *, pause=0.0):
    """An SSE handler writing ``pieces`` (bytes, or a callable giving the i-th piece, for
    ever) and recording how many it managed to write."""

    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        handler.written = 0
        try:
            for i in range(10**9):
                piece = pieces(i) if callable(pieces) else (
                    pieces[i] if i < len(pieces) else None)
                if piece is None:
                    break
                await resp.write(piece)
                handler.written += 1
                await asyncio.sleep(pause)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    handler.written = 0
    return handler


async def test_an_answer_over_its_content_length_limit_is_a_502(ferro_client, fake_upstream):
    big = {**ANSWER, "padding": "x" * 5000}
    up = await fake_upstream({"POST /chat/completions": big})
    client = await ferro_client(config(up, max_response_bytes=4096))
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "upstream_response_too_large"
    assert "limits.max_response_bytes (4096 bytes)" in error["message"]


async def test_a_chunked_answer_is_cut_once_past_the_limit(ferro_client, fake_upstream):
    handler = streamed(lambda i: b"x" * 1024 if i < 2000 else None, pause=0.001)
    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, max_response_bytes=8192))
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_response_too_large"
    await asyncio.sleep(0.05)
    assert handler.written < 100  # the gateway closed the connection: nothing buffered past


async def test_a_compressed_answer_counts_what_it_inflates_to(ferro_client, fake_upstream):
    bomb = gzip.compress(orjson.dumps({**ANSWER, "padding": "x" * 200_000}))
    assert len(bomb) < 4096

    async def handler(request):
        return web.Response(body=bomb, headers={"Content-Type": "application/json",
                                                "Content-Encoding": "gzip"})

    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, max_response_bytes=65536))
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_response_too_large"


async def test_an_answer_too_large_falls_back_to_the_next_target(ferro_client, fake_upstream):
    big = await fake_upstream({"POST /chat/completions": {**ANSWER, "padding": "x" * 5000}})
    good = await fake_upstream({"POST /chat/completions": ANSWER})
    client = await ferro_client(config(big, good, max_response_bytes=4096))
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 200
    assert resp.headers["X-Ferro-Provider"] == "p1"
    assert len(big.requests) == 1  # not retried: the same upstream would answer the same


async def test_a_giant_event_ends_the_stream_with_an_error_event(ferro_client, fake_upstream):
    handler = streamed(lambda i: sse_body(chunk("Hi")) if i == 0 else b"data: " + b"x" * 1024,
                       pause=0.001)
    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, max_frame_bytes=32 * 1024))
    resp = await client.post("/v1/chat/completions", json=STREAM)
    assert resp.status == 200
    data = events(await resp.text())
    assert orjson.loads(data[0])["choices"][0]["delta"]["content"] == "Hi"
    assert orjson.loads(data[-2])["error"]["code"] == "stream_frame_too_large"
    assert data[-1] == "[DONE]"
    assert handler.written < 200


async def test_a_translated_stream_is_bounded_too(ferro_client, fake_upstream):
    start = {"type": "message_start", "message": {
        "id": "m1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}}
    text = {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hi"}}
    first = sse_body(start, text, event_names=["message_start", "content_block_delta"])
    handler = streamed(lambda i: first if i == 0 else b"x" * 1024, pause=0.001)
    up = await fake_upstream({"POST /v1/messages": handler})
    client = await ferro_client({"providers": {"claude": {"type": "anthropic", "api_key": "k",
                                                          "base_url": up.url}},
                                 "limits": {"max_frame_bytes": 32 * 1024}})
    resp = await client.post("/v1/chat/completions",
                             json={**STREAM, "model": "claude-sonnet-4-5"})
    data = events(await resp.text())
    assert "".join(orjson.loads(d)["choices"][0]["delta"].get("content", "")
                   for d in data[:-2]) == "Hi"
    assert orjson.loads(data[-2])["error"]["code"] == "stream_frame_too_large"
    assert data[-1] == "[DONE]"


async def test_an_endless_stream_ends_at_its_byte_limit(ferro_client, fake_upstream):
    handler = streamed(lambda i: sse_body(chunk("la " * 50)))
    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, max_stream_bytes=200_000))
    async with asyncio.timeout(10):
        resp = await client.post("/v1/chat/completions", json=STREAM)
        text = await resp.text()
    data = events(text)
    assert orjson.loads(data[-2])["error"]["code"] == "stream_too_large"
    assert data[-1] == "[DONE]"
    assert 150_000 < len(text) < 250_000


async def test_a_stream_ends_at_its_duration_limit(ferro_client, fake_upstream):
    handler = streamed(lambda i: sse_body(chunk("tick ")), pause=0.02)
    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client(config(up, max_stream_duration="300ms"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(10):
        resp = await client.post("/v1/chat/completions", json=STREAM)
        data = events(await resp.text())
    assert loop.time() - started < 2
    error = orjson.loads(data[-2])["error"]
    assert error["code"] == "stream_too_long"
    assert "limits.max_stream_duration (0.3s)" in error["message"]
    assert data[-1] == "[DONE]"
    assert len(data) > 3  # what came before the limit reached the client


def test_a_large_event_in_small_reads_is_searched_once():
    reader = FrameReader(max_frame=64 * 1024 * 1024)
    piece, count = b"x" * 1024, 20_000
    for _ in range(count):
        assert reader.feed(piece) == b""
    assert reader.feed(b"\n\ndata: next") == piece * count + b"\n\n"
    assert reader.rest() == b"data: next\n\n"
    total = 1024 * count + len(b"\n\ndata: next")
    # each byte searched once, plus the one byte before each read (a straddling separator);
    # rescanning the buffer on each read would search ~200 million bytes here
    assert reader.scanned <= total + count + 1


def test_frames_are_the_same_however_the_stream_is_cut():
    stream = b"data: a\r\n\r\ndata: bb\n\nevent: x\r\ndata: c\r\n\r\n" * 20 + b"data: tail"
    whole = FrameReader()
    expected = whole.feed(stream) + whole.rest()
    assert expected == stream.replace(b"\r\n", b"\n") + b"\n\n"
    for size in (1, 2, 3, 7, 64):
        reader = FrameReader()
        out = b"".join(reader.feed(stream[i:i + size]) for i in range(0, len(stream), size))
        assert out + reader.rest() == expected


def test_the_reader_refuses_a_frame_or_a_stream_past_its_limit():
    reader = FrameReader(max_frame=100, max_bytes=10_000)
    reader.feed(b"data: " + b"x" * 90)
    with pytest.raises(StreamLimitError) as info:
        reader.feed(b"x" * 20)
    assert info.value.code == "stream_frame_too_large"
    reader = FrameReader(max_frame=100, max_bytes=1000)
    for _ in range(66):
        reader.feed(b"data: 1234567\n\n")  # 66 x 15 = 990 bytes
    with pytest.raises(StreamLimitError) as info:
        reader.feed(b"data: 1234567\n\n")
    assert info.value.code == "stream_too_large"
