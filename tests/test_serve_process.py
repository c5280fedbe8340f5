"""`ferrogw serve` as a real process: it starts, serves, and drains in-flight requests on
SIGTERM."""

import asyncio
import signal

import aiohttp
import orjson
from aiohttp import web


def slow_stream(count):
    """An upstream handler streaming ``count`` chunks ("0 ", "1 ", ...), 0.1 s apart."""

    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(count):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": f"{i} "},
                                  "finish_reason": "stop" if i == count - 1 else None}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(0.1)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    return handler


async def test_sigterm_drains_an_in_flight_stream(fake_upstream, ferrogw):
    upstream = await fake_upstream({"POST /v1/chat/completions": slow_stream(10)})
    process, url = await ferrogw(
        f"providers:\n  openai: {{api_key: k, base_url: '{upstream.url}/v1'}}\n"
        "targets:\n  - virtual_key: openai\n")
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4o", "stream": True,
                  "messages": [{"role": "user", "content": "count"}]}) as resp:
        first = await resp.content.readline()
        assert first.startswith(b"data: ")
        process.send_signal(signal.SIGTERM)
        rest = await resp.read()
    assert rest.endswith(b"data: [DONE]\n\n")
    assert b'"finish_reason":"stop"' in rest
    assert await asyncio.wait_for(process.wait(), 10) == 0
    logs = (await process.stderr.read()).decode()
    assert "shutting down gracefully" in logs
    assert "server stopped" in logs


async def test_a_client_that_leaves_stops_the_fallback(fake_upstream, ferrogw):
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(request):
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.json_response({"error": {"message": "late"}}, status=503)

    slow = await fake_upstream({"POST /v1/chat/completions": hang})
    backup = await fake_upstream({"POST /v1/chat/completions": {"choices": []}})
    _process, url = await ferrogw(
        "strategy: {mode: fallback}\n"
        f"providers:\n  a: {{type: openai, api_key: k, base_url: '{slow.url}/v1'}}\n"
        f"  b: {{type: openai, api_key: k, base_url: '{backup.url}/v1'}}\n"
        "targets:\n  - virtual_key: a\n  - virtual_key: b\n")
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}))
        await asyncio.wait_for(started.wait(), 5)
        request.cancel()  # the client goes away while the first target is slow
        await asyncio.wait_for(cancelled.wait(), 5)  # the upstream call is dropped too
    await asyncio.sleep(0.3)
    assert backup.requests == []  # and nothing falls back on its behalf


async def test_sighup_reloads_the_config_file_with_a_stream_in_flight(fake_upstream, ferrogw,
                                                                     tmp_path):
    upstream = await fake_upstream({"POST /v1/chat/completions": slow_stream(8)})
    process, url = await ferrogw(
        f"providers:\n  openai: {{api_key: k, base_url: '{upstream.url}/v1'}}\n"
        "targets:\n  - virtual_key: openai\n")
    config = tmp_path / "gateway.yaml"
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/chat/completions", json={
                "model": "m", "stream": True,
                "messages": [{"role": "user", "content": "count"}]}) as resp:
            assert (await resp.content.readline()).startswith(b"data: ")
            config.write_text("providers:\n  echo: {}\ntargets:\n  - virtual_key: echo\n")
            process.send_signal(signal.SIGHUP)
            for _ in range(50):  # the reload is applied at once; new requests see it
                async with session.get(url + "/health") as health:
                    names = [p["name"] for p in (await health.json())["providers"]]
                if names == ["echo"]:
                    break
                await asyncio.sleep(0.05)
            assert names == ["echo"]
            rest = await resp.read()
        assert rest.endswith(b"data: [DONE]\n\n") and b'"content":"7 "' in rest
        async with session.post(url + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "hi"}]}) as answer:
            assert (await answer.json())["choices"][0]["message"]["content"] == "echo: hi"
        config.write_text("providers:\n  echo: {}\ntargets:\n  - virtual_key: echo\n"
                          "    wieght: 2\n")
        process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        async with session.get(url + "/health") as health:
            assert health.status == 200
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 10) == 0
    logs = (await process.stderr.read()).decode()
    assert "config reloaded" in logs
    assert "config reload failed; the running config keeps serving" in logs
    assert "gateway.yaml:5: targets[0].wieght: unknown key 'wieght'" in logs
