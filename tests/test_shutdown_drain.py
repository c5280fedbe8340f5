"""SIGTERM with streams and requests in flight, on a real `ferrogw serve` process with a
small ``server.shutdown_timeout``: what finishes within it finishes normally, what outlives
it is ended in the error schema, new connections are refused meanwhile, and the process
exits 0 within the timeout and a small margin."""

import asyncio
import signal
import time

import aiohttp
import orjson
from aiohttp import web

SHUTDOWN_TIMEOUT = 2.0
#: How long after the timeout the process may take to exit.
MARGIN = 1.0


async def upstream_chat(request):
    """Streams as many chunks, 0.1 s apart, as the user message says; a whole answer takes
    ten seconds."""
    body = await request.json()
    if not body.get("stream"):
        await asyncio.sleep(10)
        return web.json_response({"choices": []})
    count = int(body["messages"][0]["content"])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    try:
        for i in range(count):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": f"{i} "},
                                  "finish_reason": "stop" if i == count - 1 else None}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(0.1)
        await resp.write(b"data: [DONE]\n\n")
    except ConnectionResetError:  # the gateway let go of the stream
        pass
    return resp


async def refused(url):
    """Whether a new connection to ``url`` is refused within a second."""
    host, port = url.removeprefix("http://").split(":")
    for _ in range(20):
        try:
            _reader, writer = await asyncio.open_connection(host, int(port))
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.05)
    return False


async def test_sigterm_drains_then_ends_what_outlives_the_timeout(fake_upstream, ferrogw):
    upstream = await fake_upstream({"POST /v1/chat/completions": upstream_chat})
    process, url = await ferrogw(
        f"providers:\n  openai: {{api_key: k, base_url: '{upstream.url}/v1'}}\n"
        "targets:\n  - virtual_key: openai\n"
        f"server:\n  shutdown_timeout: {SHUTDOWN_TIMEOUT}s\n")

    async def stream(session, chunks):
        async with session.post(url + "/v1/chat/completions", json={
                "model": "m", "stream": True,
                "messages": [{"role": "user", "content": str(chunks)}]}) as resp:
            first = await resp.content.readline()
            started.release()
            return first + await resp.read()

    async def whole(session):
        async with session.post(url + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "x"}]}) as resp:
            return resp.status, await resp.json()

    started = asyncio.Semaphore(0)
    async with aiohttp.ClientSession() as session:
        short = [asyncio.ensure_future(stream(session, 10)) for _ in range(2)]  # ~1 s
        long = [asyncio.ensure_future(stream(session, 100)) for _ in range(2)]  # ~10 s
        answer = asyncio.ensure_future(whole(session))
        for _ in range(4):  # every stream has begun
            await asyncio.wait_for(started.acquire(), 5)
        await asyncio.sleep(0.1)  # and the whole request has reached the upstream
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert await refused(url)  # new connections, during the drain
        short_bodies = await asyncio.gather(*short)
        long_bodies = await asyncio.wait_for(asyncio.gather(*long), SHUTDOWN_TIMEOUT + MARGIN)
        status, error = await answer
    assert await asyncio.wait_for(process.wait(), SHUTDOWN_TIMEOUT + MARGIN) == 0
    took = time.monotonic() - signalled
    print(f"exited {took:.2f}s after SIGTERM (shutdown_timeout {SHUTDOWN_TIMEOUT}s)")
    assert SHUTDOWN_TIMEOUT <= took < SHUTDOWN_TIMEOUT + MARGIN

    for body in short_bodies:  # finished within the drain: untouched
        assert body.endswith(b"data: [DONE]\n\n")
        assert b'"content":"9 "' in body and b'"finish_reason":"stop"' in body
        assert b'"error"' not in body
    for body in long_bodies:  # outlived it: ended with an error event, then [DONE]
        *_, last_event, done, _ = body.split(b"\n\n")
        assert done == b"data: [DONE]"
        event = orjson.loads(last_event.removeprefix(b"data: "))
        assert event["error"]["code"] == "server_shutting_down"
        assert event["error"]["type"] == "server_error"
        assert b'"finish_reason":"stop"' not in body
    assert status == 503
    assert error["error"]["code"] == "server_shutting_down"
    logs = (await process.stderr.read()).decode()
    assert "shutting down gracefully" in logs
    assert "server stopped" in logs
