"""``GET /health``: each provider's circuit breaker state and model count, and the overall
status they make."""

import asyncio

from aiohttp import web
from ferro.testing import stub_config

HELLO = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def by_name(body):
    return {p["name"]: p for p in body["providers"]}


def breaking(threshold=1, timeout="1h"):
    """Targets ``bad`` (every call fails) then ``good``, each behind a breaker."""
    config = stub_config("bad", "good", strategy="fallback")
    config["providers"]["bad"]["fail_status"] = 503
    breaker = {"failure_threshold": threshold, "timeout": timeout}
    config["targets"] = [{"virtual_key": name, "circuit_breaker": breaker}
                         for name in ("bad", "good")]
    return config


async def test_an_open_breaker_shows_and_degrades_the_gateway(ferro_client, stub_plugins):
    client = await ferro_client(breaking(), pm=stub_plugins)
    before = await (await client.get("/health")).json()
    assert before["status"] == "ok"
    assert {n: p["breaker"] for n, p in by_name(before).items()} == {"bad": "closed",
                                                                     "good": "closed"}

    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 200  # bad failed once, which opened its breaker; good answered

    resp = await client.get("/health")
    assert resp.status == 200
    after = await resp.json()
    assert after["status"] == "degraded"
    providers = by_name(after)
    assert providers["bad"]["breaker"] == "open"
    assert providers["bad"]["status"] == "available"  # no deep check was asked for
    assert providers["good"]["breaker"] == "closed"


async def test_a_half_open_breaker_does_not_degrade_the_gateway(ferro_client, stub_plugins):
    client = await ferro_client(breaking(timeout="50ms"), pm=stub_plugins)
    await client.post("/v1/chat/completions", json=HELLO)
    await asyncio.sleep(0.1)  # past the breaker's timeout: the next call is a trial
    body = await (await client.get("/health")).json()
    assert by_name(body)["bad"]["breaker"] == "half_open"
    assert body["status"] == "ok"


async def test_a_provider_without_breaker_reports_closed(ferro_client, stub_plugins):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    body = await (await client.get("/health")).json()
    assert body["providers"][0]["breaker"] == "closed"
    assert set(body["providers"][0]) == {"name", "status", "models", "breaker", "operations"}


async def test_the_model_count_is_what_the_provider_serves(ferro_client, fake_upstream):
    """Plain /health counts the models a provider is configured with or knows, with no
    upstream call; the deep check counts what the upstream lists."""
    async def models(request):
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "x"}
            for name in ("one", "two", "three")]})

    upstream = await fake_upstream({"GET /v1/models": models})
    client = await ferro_client({
        "providers": {"listed": {"type": "echo", "models": ["a", "b"]},
                      "discovered": {"type": "openai", "api_key": "k",
                                     "base_url": upstream.url + "/v1"}},
        "strategy": {"mode": "fallback"}})
    plain = {n: p["models"] for n, p in by_name(await (await client.get("/health")).json())
             .items()}
    assert plain["listed"] == 2 and plain["discovered"] >= 1
    deep = {n: p["models"] for n, p in
            by_name(await (await client.get("/health?deep=1")).json()).items()}
    assert deep == {"listed": 2, "discovered": 3}


async def test_a_provider_that_is_down_degrades_the_gateway(ferro_client, unused_tcp_port):
    client = await ferro_client({
        "providers": {"echo": {"type": "echo"},
                      "openai": {"api_key": "k", "models": ["gpt-4o"],
                                 "base_url": f"http://127.0.0.1:{unused_tcp_port}/v1"}},
        "strategy": {"mode": "fallback"}})
    body = await (await client.get("/health?deep=1")).json()
    assert body["status"] == "degraded"
    assert by_name(body)["openai"]["status"] == "unavailable"
    assert by_name(body)["openai"]["breaker"] == "closed"
