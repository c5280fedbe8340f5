"""The Redis cache against the real Redis at 127.0.0.1:6379 (skipped, saying so, when none
answers): entries, TTL, the size bound, sharing between instances, a gateway's hits, and a
Redis that is down."""

import asyncio
import logging
import uuid

import pytest
import redis.asyncio as aioredis
from ferro import CacheEntry
from ferro.app import PIPELINE
from ferro.testing import REDIS_URL, needs_redis, stub_config
from ferro_cache_redis import RedisCache

URL = REDIS_URL
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


pytestmark = needs_redis


@pytest.fixture
async def prefix():
    """A fresh key prefix, and every key under it deleted after the test."""
    name = f"ferro-test:{uuid.uuid4().hex}:"
    yield name
    client = aioredis.Redis.from_url(URL)
    keys = [k async for k in client.scan_iter(match=name + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make(prefix, ttl=60, **options):
    return RedisCache(RedisCache.Options(url=URL, prefix=prefix, **options), ttl)


async def test_an_entry_is_stored_and_read_back(prefix):
    cache = make(prefix)
    entry = CacheEntry("chat", 1700000000.0, b'{"object":"chat.completion"}')
    assert await cache.get("k1") is None
    await cache.store("k1", entry)
    assert await cache.get("k1") == entry
    await cache.aclose()


async def test_entries_expire_with_the_ttl(prefix):
    cache = make(prefix, ttl=0.3)
    await cache.store("k", CacheEntry("chat", 0, b"{}"))
    assert await cache.get("k") is not None
    await asyncio.sleep(0.45)
    assert await cache.get("k") is None
    await cache.aclose()


async def test_the_count_is_bounded_and_the_oldest_go_first(prefix):
    cache = make(prefix, max_entries=3)
    for i in range(5):
        await cache.store(f"k{i}", CacheEntry("chat", 0, b"{}"))
        await asyncio.sleep(0.002)  # distinct store times
    kept = [i for i in range(5) if await cache.get(f"k{i}") is not None]
    assert kept == [2, 3, 4]
    client = aioredis.Redis.from_url(URL)
    assert await client.zcard(prefix + "index") == 3
    assert await client.pttl(prefix + "k4") > 0, "every key has a TTL"
    await client.aclose()
    await cache.aclose()


async def test_instances_with_one_prefix_share_and_other_prefixes_do_not(prefix):
    one, two, other = make(prefix), make(prefix), make(prefix + "other:")
    await one.store("k", CacheEntry("embeddings", 5.0, b'{"data":[]}'))
    assert (await two.get("k")).raw == b'{"data":[]}'
    assert await other.get("k") is None
    for cache in (one, two, other):
        await cache.aclose()


async def test_foreign_data_under_a_key_is_a_miss(prefix):
    client = aioredis.Redis.from_url(URL)
    await client.set(prefix + "k", b"something else", px=60000)
    await client.aclose()
    cache = make(prefix)
    assert await cache.get("k") is None
    await cache.aclose()


async def test_a_redis_that_is_down_is_a_miss_and_logged_once(caplog, unused_tcp_port):
    cache = RedisCache(RedisCache.Options(url=f"redis://127.0.0.1:{unused_tcp_port}/0"), 60)
    with caplog.at_level(logging.WARNING, logger="ferro.cache.redis"):
        assert await cache.get("k") is None
        await cache.store("k", CacheEntry("chat", 0, b"{}"))
        assert await cache.get("k") is None
    warnings = [r for r in caplog.records if "redis cache unavailable" in r.getMessage()]
    assert len(warnings) == 1
    await cache.aclose()


async def test_a_gateway_answers_hits_from_redis_and_survives_an_outage(ferro_client,
                                                                        stub_plugins, prefix,
                                                                        unused_tcp_port):
    cfg = stub_config("a", reply="from redis")
    cfg["cache"] = {"backend": "redis", "ttl": "60s", "options": {"url": URL, "prefix": prefix}}
    client = await ferro_client(cfg, pm=stub_plugins)
    provider = client.app[PIPELINE].gateway.providers["a"]
    first = await client.post("/v1/chat/completions", json=CHAT)
    second = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert (first.headers["X-Ferro-Cache"], second.headers["X-Ferro-Cache"]) == ("MISS", "HIT")
    assert "from redis" in await second.text()
    assert provider.calls == 1

    down = stub_config("a", reply="no cache")
    down["cache"] = {"backend": "redis", "options": {
        "url": f"redis://127.0.0.1:{unused_tcp_port}/0", "timeout": "100ms"}}
    client = await ferro_client(down, pm=stub_plugins)
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 200
    assert resp.headers["X-Ferro-Cache"] == "MISS"
