"""The response cache end to end, driven by the official openai client over a real socket:
a second identical request (streamed and not) and an identical embeddings call make no
upstream call; two gateway processes share answers through the real Redis."""

import asyncio
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from ferro.testing import needs_redis, sse_body

FERROGW = str(Path(sys.executable).with_name("ferrogw"))


def openai_upstream():
    """Handlers for an OpenAI-compatible upstream answering chat (JSON or SSE, with usage)
    and embeddings."""

    async def chat(request):
        body = await request.json()
        text = f"answer to {body['messages'][-1]['content']}"
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": body["model"], "usage": usage, "choices": [{
                    "index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text}}]})
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": body["model"]}
        return web.Response(content_type="text/event-stream", body=sse_body(
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": usage}, b"[DONE]"))

    async def embeddings(request):
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({
            "object": "list", "model": body["model"],
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            "data": [{"object": "embedding", "index": i, "embedding": [0.1 * i, 0.2]}
                     for i in range(len(inputs))]})

    return {"POST /v1/chat/completions": chat, "POST /v1/embeddings": embeddings}


def config(upstream_url, cache):
    return {"providers": {"openai": {"api_key": "sk-test", "base_url": f"{upstream_url}/v1"}},
            "targets": [{"virtual_key": "openai"}], "cache": cache}


def calls(upstream, path):
    return sum(1 for r in upstream.requests if r.path == path)


async def test_identical_requests_make_no_second_upstream_call(openai_client, fake_upstream):
    upstream = await fake_upstream(openai_upstream())
    client = await openai_client(config(upstream.url, {"backend": "memory", "ttl": "5m"}))
    messages = [{"role": "user", "content": "ping"}]

    first = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages)
    second = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages)
    assert (first.headers["x-ferro-cache"], second.headers["x-ferro-cache"]) == ("MISS", "HIT")
    assert second.parse().choices[0].message.content == "answer to ping"
    assert second.parse().usage.total_tokens == 8

    streamed = [{"role": "user", "content": "stream me"}]
    for _ in range(2):
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=streamed, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "answer to stream me"
        assert chunks[-1].usage.total_tokens == 8
    assert calls(upstream, "/v1/chat/completions") == 2, "one upstream call per question"

    for _ in range(2):
        vectors = await client.embeddings.create(model="text-embedding-3-small",
                                                 input=["a", "b"])
        assert [d.index for d in vectors.data] == [0, 1]
    assert calls(upstream, "/v1/embeddings") == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(tmp_path, name, cfg):
    port = _free_port()
    path = tmp_path / f"{name}.json"
    path.write_text(orjson.dumps(cfg).decode())
    process = await asyncio.create_subprocess_exec(
        FERROGW, "serve", "--config", str(path), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url + "/health") as resp:
                    if resp.status < 500:
                        return process, url
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError(f"gateway {name} did not start")


@needs_redis
async def test_two_gateway_processes_share_the_redis_cache(fake_upstream, tmp_path):
    import redis.asyncio as aioredis

    upstream = await fake_upstream(openai_upstream())
    prefix = f"ferro-test:{uuid.uuid4().hex}:"
    cfg = config(upstream.url, {"backend": "redis", "ttl": "60s",
                                "options": {"url": "redis://127.0.0.1:6379/0",
                                            "prefix": prefix}})
    processes = [await _serve(tmp_path, name, cfg) for name in ("one", "two")]
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "shared"}]}
    try:
        async with aiohttp.ClientSession() as session:
            verdicts = []
            for _process, url in (*processes, *processes):
                async with session.post(url + "/v1/chat/completions", json=request) as resp:
                    assert resp.status == 200
                    verdicts.append(resp.headers["X-Ferro-Cache"])
                    assert (await resp.json())["choices"][0]["message"]["content"] == \
                        "answer to shared"
            assert verdicts == ["MISS", "HIT", "HIT", "HIT"]
            assert calls(upstream, "/v1/chat/completions") == 1
    finally:
        for process, _url in processes:
            process.terminate()
            await process.wait()
        client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
