"""Rate limits end to end: two `ferrogw serve` processes sharing the real Redis enforce one
limit per API key. Requests sent at once, spread over both, get through exactly as many as
the limit allows (give or take what refilled while they ran); the refusals carry
Retry-After and the x-ratelimit headers, and the official openai client sees
``openai.RateLimitError``."""

import asyncio
import time
import uuid

import aiohttp
import openai
import pytest
import redis.asyncio as aioredis
from ferro.testing import needs_redis

from tests.e2e.test_cache_e2e import _serve, calls, openai_upstream

REDIS = "redis://127.0.0.1:6379/0"
KEY = "sk-e2e-ratelimit"
BURST = 12
RATE = 0.1  # requests a second refilled
SENT = 40
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def gateway_config(upstream_url, prefix):
    return {
        "providers": {"openai": {"api_key": "sk-test", "base_url": f"{upstream_url}/v1"}},
        "targets": [{"virtual_key": "openai"}],
        "server": {"api_keys": [KEY]},
        "plugins": [{"name": "ratelimit", "stage": "before_request", "config": {
            "backend": "redis",
            "per_key": {"requests_per_second": RATE, "burst": BURST},
            # a slow Redis answers 503 rather than letting requests through uncounted
            "on_backend_error": "deny",
            "redis": {"url": REDIS, "prefix": prefix, "timeout": "2s"}}}],
    }


async def post(session, url):
    async with session.post(url + "/v1/chat/completions", json=CHAT) as resp:
        await resp.read()
        return resp.status, resp.headers


@needs_redis
async def test_two_gateway_processes_enforce_one_limit_through_redis(fake_upstream, tmp_path):
    upstream = await fake_upstream(openai_upstream())
    prefix = f"ferro-test:{uuid.uuid4().hex}:"
    cfg = gateway_config(upstream.url, prefix)
    processes = [await _serve(tmp_path, name, cfg) for name in ("one", "two")]
    urls = [url for _process, url in processes]
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
            started = time.monotonic()
            replies = await asyncio.gather(*(post(session, urls[i % 2]) for i in range(SENT)))
            elapsed = time.monotonic() - started

        statuses = [status for status, _headers in replies]
        admitted = statuses.count(200)
        assert admitted + statuses.count(429) == SENT, statuses
        refilled = elapsed * RATE  # what the bucket gained while the requests ran
        assert BURST <= admitted <= BURST + refilled, (admitted, elapsed)
        assert calls(upstream, "/v1/chat/completions") == admitted

        for status, headers in replies:
            assert headers["x-ratelimit-limit-requests"] == str(BURST)
            assert headers["x-ratelimit-reset-requests"].endswith("s")
            if status == 429:
                assert headers["x-ratelimit-remaining-requests"] == "0"
                assert 1 <= int(headers["Retry-After"]) <= 1 / RATE

        client = openai.AsyncOpenAI(base_url=urls[1] + "/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(**CHAT)
        await client.close()
        assert caught.value.status_code == 429
        assert caught.value.code == "rate_limit_exceeded"
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    finally:
        for process, _url in processes:
            process.terminate()
            await process.wait()
        client = aioredis.Redis.from_url(REDIS)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
