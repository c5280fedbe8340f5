"""The Redis backend against the real Redis at 127.0.0.1:6379 (skipped, saying so, when none
answers): one script call per check, atomic over a request's buckets and over concurrent
callers, shared by instances, keys that expire, debits gathered off the request path, and
a Redis that is down or hangs."""

import asyncio
import logging
import time
import uuid

import pytest
import redis.asyncio as aioredis
from ferro import ChatRequest, Duration, Identity, RateLimitError, RequestContext
from ferro.testing import REDIS_URL, needs_redis
from ferro_ratelimit import Limit, Options, RateLimit
from ferro_ratelimit.buckets import Policy
from ferro_ratelimit.options import RedisOptions
from ferro_ratelimit.redis_backend import (
    DEBIT_BATCH,
    DEBIT_EVERY,
    RateLimiterUnavailable,
    RedisBackend,
)

URL = REDIS_URL


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


@pytest.fixture
async def backends():
    """``make(prefix, url=URL, **options)``: backends, closed after the test."""
    made = []

    def make(prefix, url=URL, deny=False, timeout=1.0):
        backend = RedisBackend(RedisOptions(url, prefix, Duration(timeout)), deny)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


def checks(bucket="k", **limit):
    return Policy.of(Limit(**limit)).checks(bucket, "api_key", "team-a")


@needs_redis
async def test_a_bucket_admits_its_burst_then_refuses(prefix, backends):
    backend = backends(prefix)
    asked = checks(requests_per_second=0.01, burst=3)
    verdicts = [await backend.take(asked) for _ in range(4)]
    assert [admitted for admitted, _ in verdicts] == [True, True, True, False]
    assert [round(levels[0]) for _, levels in verdicts] == [2, 1, 0, 0]


@needs_redis
async def test_it_refills_on_the_redis_servers_clock(prefix, backends):
    backend = backends(prefix)
    asked = checks(requests_per_second=2, burst=1)
    assert (await backend.take(asked))[0] is True
    assert (await backend.take(asked))[0] is False
    await asyncio.sleep(0.6)  # more than a request's worth, capped at the burst of one
    admitted, levels = await backend.take(asked)
    assert admitted and levels[0] == pytest.approx(0, abs=1e-9)


@needs_redis
async def test_all_of_a_requests_buckets_are_checked_in_one_call_all_or_nothing(
        prefix, backends, monkeypatch):
    backend = backends(prefix)
    calls = []
    run = backend.script.run

    async def counted(call):
        calls.append(call.keys)
        return await run(call)

    monkeypatch.setattr(backend.script, "run", counted)
    wide = checks("wide", requests_per_second=1, burst=100, tokens_per_minute=1000)
    narrow = checks("narrow", requests_per_second=0.01, burst=1)
    assert (await backend.take(wide + narrow))[0] is True
    assert len(calls) == 1 and len(calls[0]) == 3, "three buckets, one round trip"
    admitted, levels = await backend.take(wide + narrow)
    assert not admitted
    assert levels[0] == pytest.approx(99, abs=0.5), "the refused request took nothing"


@needs_redis
async def test_the_script_is_loaded_into_redis_and_called_by_its_sha(prefix, backends):
    backend = backends(prefix)
    client = aioredis.Redis.from_url(URL)
    assert (await backend.take(checks(requests_per_second=1)))[0] is True
    assert await client.script_exists(backend.script.sha) == [True]
    await client.aclose()


@needs_redis
async def test_instances_with_one_prefix_share_one_limit_and_others_do_not(prefix, backends):
    one, two, other = backends(prefix), backends(prefix), backends(prefix + "other:")
    asked = checks(requests_per_second=0.01, burst=2)
    results = [(await backend.take(asked))[0] for backend in (one, two, one, other)]
    assert results == [True, True, False, True]


@needs_redis
async def test_concurrent_callers_get_exactly_the_burst(prefix, backends):
    shared = [backends(prefix) for _ in range(4)]
    asked = checks(requests_per_second=0.01, burst=25)
    verdicts = await asyncio.gather(*(shared[i % 4].take(asked) for i in range(80)))
    assert sum(admitted for admitted, _ in verdicts) == 25


@needs_redis
async def test_every_bucket_key_expires_once_it_would_be_full_again(prefix, backends):
    backend = backends(prefix)
    await backend.take(checks(requests_per_second=2, burst=4, tokens_per_minute=600))
    backend.debit([Policy.of(Limit(tokens_per_minute=600)).debit("k", 1200)])  # 10 a second
    await backend.flush()
    client = aioredis.Redis.from_url(URL)
    request_ttl = await client.pttl(prefix + "k:r")
    token_ttl = await client.pttl(prefix + "k:t")
    await client.aclose()
    assert 1000 < request_ttl <= 1500, "half a second to refill one request, plus a second"
    assert 120_000 < token_ttl <= 121_000, "120 s to refill 1200 tokens, plus a second"


@needs_redis
async def test_a_debit_takes_tokens_below_zero(prefix, backends):
    backend = backends(prefix)
    asked = checks(tokens_per_minute=60)
    backend.debit([Policy.of(Limit(tokens_per_minute=60)).debit("k", 90)])
    await backend.flush()
    admitted, levels = await backend.take(asked)
    assert not admitted and levels[0] == pytest.approx(-30, abs=1)


@needs_redis
async def test_a_check_of_the_same_buckets_is_encoded_once(prefix, backends, monkeypatch):
    backend = backends(prefix)
    prepared = []
    prepare = backend.script.prepare

    def counted(keys, args):
        prepared.append(keys)
        return prepare(keys, args)

    monkeypatch.setattr(backend.script, "prepare", counted)
    bucket = checks("same", requests_per_second=1, burst=100)
    levels = [(await backend.take(list(bucket)))[1][0] for _ in range(3)]
    assert levels == [pytest.approx(99, abs=0.5), pytest.approx(98, abs=0.5),
                      pytest.approx(97, abs=0.5)]
    assert prepared == [[prefix + "same:r"]]


@needs_redis
async def test_debits_are_gathered_per_bucket_and_sent_together_soon(prefix, backends,
                                                                    monkeypatch):
    backend = backends(prefix)
    sent = []
    run = backend.script.run

    async def counted(call):
        sent.append(call.keys)
        return await run(call)

    monkeypatch.setattr(backend.script, "run", counted)
    tokens = Policy.of(Limit(tokens_per_minute=600))  # 10 a second
    for _ in range(20):
        backend.debit([tokens.debit("a", 10), tokens.debit("b", 1)])
    assert sent == [], "nothing is sent on the request's path"
    await asyncio.sleep(DEBIT_EVERY * 3)
    assert sent == [[prefix + "a:t", prefix + "b:t"]]
    _, levels = await backend.take(tokens.checks("a", "api_key", "x") +
                                   tokens.checks("b", "api_key", "x"))
    assert levels == [pytest.approx(400, abs=5), pytest.approx(580, abs=5)]


@needs_redis
async def test_many_buckets_debited_at_once_go_out_in_batches(prefix, backends, monkeypatch):
    backend = backends(prefix)
    sizes = []
    run = backend.script.run

    async def counted(call):
        sizes.append(len(call.keys))
        return await run(call)

    monkeypatch.setattr(backend.script, "run", counted)
    tokens = Policy.of(Limit(tokens_per_minute=600))
    backend.debit([tokens.debit(f"ip{i}", 1) for i in range(DEBIT_BATCH + 3)])
    await backend.flush()
    assert sizes == [DEBIT_BATCH, 3]


@needs_redis
async def test_the_plugin_on_redis_limits_a_key(prefix):
    options = Options(backend="redis", per_key=Limit(requests_per_second=0.01, burst=1),
                      redis=RedisOptions(URL, prefix))
    plugin = RateLimit(options)

    def ctx():
        return RequestContext(ChatRequest({"model": "m", "messages": []}), "r",
                              Identity("key-1", "team-a"))

    first = ctx()
    await plugin.before_request(first)
    assert first.reply_headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimitError):
        await plugin.before_request(ctx())
    await plugin.aclose()


# --- a Redis that is down or hangs ----------------------------------------------------------------


async def test_a_redis_that_is_down_admits_and_is_logged_once(caplog, unused_tcp_port,
                                                              backends):
    backend = backends("p:", url=f"redis://127.0.0.1:{unused_tcp_port}/0")
    with caplog.at_level(logging.WARNING, logger="ferro.ratelimit"):
        assert await backend.take(checks(requests_per_second=1)) is None
        assert await backend.take(checks(requests_per_second=1)) is None
        backend.debit([Policy.of(Limit(tokens_per_minute=60)).debit("k", 5)])
        await backend.flush()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "rate limiter's Redis is unavailable, not limiting requests" in warnings[0]


async def test_a_redis_that_is_down_refuses_with_a_503_when_told_to(unused_tcp_port,
                                                                   backends):
    backend = backends("p:", url=f"redis://127.0.0.1:{unused_tcp_port}/0", deny=True)
    with pytest.raises(RateLimiterUnavailable) as caught:
        await backend.take(checks(requests_per_second=1))
    assert (caught.value.status, caught.value.code) == (503, "rate_limiter_unavailable")
    backend.debit([Policy.of(Limit(tokens_per_minute=60)).debit("k", 5)])
    await backend.flush()  # a failed debit is dropped, whatever on_backend_error says


async def test_a_redis_that_never_answers_is_given_up_on_within_the_timeout(backends):
    async def silent(reader, writer):
        await reader.read()  # hold the connection open, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = backends("p:", url=f"redis://127.0.0.1:{port}/0", timeout=0.2)
    started = time.monotonic()
    assert await backend.take(checks(requests_per_second=1)) is None
    assert time.monotonic() - started < 1.0
    server.close()
