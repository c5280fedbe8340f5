"""The memory cache in a gateway: hits without an upstream call (streams and embeddings too),
the reply headers, Cache-Control, what is never stored, LRU and TTL, the older gateway's
config, and a reload that keeps the entries."""

import orjson
import pytest
from ferro import ChatResponse, GatewayError, hookimpl
from ferro.app import PIPELINE, reload
from ferro.config import parse_config
from ferro.testing import stub_config
from ferro_cache_memory import MemoryCache

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def cached(**options):
    cfg = stub_config("a", reply="cached words")
    cfg["cache"] = {"backend": "memory", "ttl": "60s", "options": options}
    return cfg


def stream_text(body: str) -> str:
    text = ""
    for line in body.splitlines():
        if line.startswith("data: {"):
            for choice in orjson.loads(line[6:]).get("choices") or ():
                text += (choice.get("delta") or {}).get("content") or ""
    return text


async def start(ferro_client, stub_plugins, config):
    client = await ferro_client(config, pm=stub_plugins)
    return client, client.app[PIPELINE].gateway.providers["a"]


async def test_a_second_identical_request_makes_no_upstream_call(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    first = await client.post("/v1/chat/completions", json=CHAT)
    assert first.headers["X-Ferro-Cache"] == "MISS"
    assert "Age" not in first.headers
    second = await client.post("/v1/chat/completions", json=CHAT)
    assert second.headers["X-Ferro-Cache"] == "HIT"
    assert second.headers["Age"] == "0"
    assert await second.json() == await first.json()
    assert provider.calls == 1


async def test_a_stream_hit_is_replayed_as_a_well_formed_stream(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    stream = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    miss = await client.post("/v1/chat/completions", json=stream)
    assert stream_text(await miss.text()) == "cached words "
    hit = await client.post("/v1/chat/completions", json=stream)
    body = await hit.text()
    assert hit.headers["X-Ferro-Cache"] == "HIT"
    assert hit.headers["Content-Type"].startswith("text/event-stream")
    assert stream_text(body) == "cached words "
    frames = [orjson.loads(line[6:]) for line in body.splitlines()
              if line.startswith("data: {")]
    assert frames[-1]["choices"] == [] and frames[-1]["usage"]["total_tokens"] > 0
    assert any(c["finish_reason"] == "stop" for f in frames for c in f["choices"])
    assert body.endswith("data: [DONE]\n\n")
    plain = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert all("usage" not in orjson.loads(line[6:]) for line in (await plain.text()).split(
        "\n") if line.startswith("data: {")), "usage only when the client asked for it"
    whole = await client.post("/v1/chat/completions", json=CHAT)
    assert whole.headers["X-Ferro-Cache"] == "HIT", "a stream's answer serves a whole request"
    assert provider.calls == 1


async def test_embeddings_and_completions_are_cached(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    embed = {"model": "m", "input": ["one", "two"]}
    first = await (await client.post("/v1/embeddings", json=embed)).json()
    hit = await client.post("/v1/embeddings", json=embed)
    assert hit.headers["X-Ferro-Cache"] == "HIT"
    assert await hit.json() == first
    text = {"model": "m", "prompt": "say it"}
    await client.post("/v1/completions", json=text)
    again = await client.post("/v1/completions", json=text)
    assert again.headers["X-Ferro-Cache"] == "HIT"
    assert (await again.json())["object"] == "text_completion"
    assert provider.calls == 2


async def test_uncacheable_requests_bypass_the_cache(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json={**CHAT, "temperature": 0.9})
        assert resp.headers["X-Ferro-Cache"] == "BYPASS"
    assert provider.calls == 2


async def test_cache_control_is_honoured(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    no_store = await client.post("/v1/chat/completions", json=CHAT,
                                 headers={"Cache-Control": "no-store"})
    assert no_store.headers["X-Ferro-Cache"] == "BYPASS"
    assert len(client.app[PIPELINE].gateway.cache) == 0, "no-store stores nothing"
    await client.post("/v1/chat/completions", json=CHAT)
    refresh = await client.post("/v1/chat/completions", json=CHAT,
                                headers={"Cache-Control": "no-cache"})
    assert refresh.headers["X-Ferro-Cache"] == "MISS"
    assert provider.calls == 3, "no-cache goes to the upstream"
    fresh_enough = await client.post("/v1/chat/completions", json=CHAT,
                                     headers={"Cache-Control": "max-age=60"})
    assert fresh_enough.headers["X-Ferro-Cache"] == "HIT"
    assert provider.calls == 3


async def test_a_hit_costs_nothing_and_says_so_in_the_exchange(ferro_client, stub_plugins):
    seen = []

    class Listener:
        @hookimpl
        def exchange_completed(self, exchange):
            seen.append(exchange)

    stub_plugins.register(Listener(), name="listener")
    client, _ = await start(ferro_client, stub_plugins, cached())
    await client.post("/v1/chat/completions", json=CHAT)
    await client.post("/v1/chat/completions", json=CHAT)
    assert [e.metadata.get("cache") for e in seen] == ["miss", "hit"]
    assert seen[1].cost == 0.0 and seen[1].status == 200
    assert seen[0].cost is None, "a miss is priced as any answer (the stub has no price)"


async def test_a_cut_stream_is_never_stored(ferro_client, stub_plugins):
    client, provider = await start(ferro_client, stub_plugins, cached())
    real_stream = provider.stream

    async def cut(request):
        async for chunk in real_stream(request):
            yield chunk
            raise GatewayError("upstream went away", status=502, code="upstream_disconnected")

    provider.stream = cut
    body = await (await client.post("/v1/chat/completions",
                                    json={**CHAT, "stream": True})).text()
    assert '"upstream_disconnected"' in body
    assert len(client.app[PIPELINE].gateway.cache) == 0
    provider.stream = real_stream
    again = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert again.headers["X-Ferro-Cache"] == "MISS"


async def test_a_failed_answer_is_never_stored(ferro_client, stub_plugins):
    cfg = cached()
    cfg["providers"]["a"]["fail_status"] = 503
    client, provider = await start(ferro_client, stub_plugins, cfg)
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json=CHAT)
        assert resp.status == 503
        assert resp.headers["X-Ferro-Cache"] == "MISS"
    assert len(client.app[PIPELINE].gateway.cache) == 0
    assert provider.calls == 2


async def test_scopes_never_mix_between_keys(ferro_client, stub_plugins):
    cfg = cached()
    cfg["server"] = {"api_keys": ["key-one", "key-two"]}
    client, provider = await start(ferro_client, stub_plugins, cfg)
    for key in ("key-one", "key-two", "key-one"):
        await client.post("/v1/chat/completions", json=CHAT,
                          headers={"Authorization": f"Bearer {key}"})
    assert provider.calls == 2


async def test_entries_expire_and_the_least_recently_used_go_first():
    now = [1000.0]
    cache = MemoryCache(MemoryCache.Options(max_entries=2), 10, clock=lambda: now[0])
    from ferro import CacheEntry

    for key in ("a", "b"):
        await cache.store(key, CacheEntry("chat", 0, b"{}"))
    assert await cache.get("a") is not None  # a is now the most recently used
    await cache.store("c", CacheEntry("chat", 0, b"{}"))
    assert await cache.get("b") is None and await cache.get("a") is not None
    now[0] += 11
    assert await cache.get("a") is None and await cache.get("c") is None
    assert len(cache) == 0


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError, match="max_entries must be at least 1"):
        MemoryCache.Options(max_entries=0)


async def test_the_older_gateways_response_cache_plugin_config_works(ferro_client,
                                                                     stub_plugins):
    cfg = stub_config("a", reply="cached words")
    cfg["plugins"] = [{"name": "response-cache", "type": "transform", "stage": "before_request",
                       "enabled": True, "config": {"max_age": 120, "max_entries": 5}}]
    client, provider = await start(ferro_client, stub_plugins, cfg)
    cache = client.app[PIPELINE].gateway.cache
    assert isinstance(cache, MemoryCache)
    assert cache.ttl == 120 and cache.options.max_entries == 5
    await client.post("/v1/chat/completions", json=CHAT)
    hit = await client.post("/v1/chat/completions", json=CHAT)
    assert hit.headers["X-Ferro-Cache"] == "HIT" and provider.calls == 1


async def test_a_disabled_response_cache_plugin_means_no_cache(ferro_client, stub_plugins):
    cfg = stub_config("a")
    cfg["plugins"] = [{"name": "response-cache", "enabled": False, "config": {"max_age": 1}}]
    client, _ = await start(ferro_client, stub_plugins, cfg)
    assert client.app[PIPELINE].gateway.cache is None
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert "X-Ferro-Cache" not in resp.headers


def test_a_bad_option_is_located_in_the_config(stub_plugins):
    from ferro import ConfigError
    from ferro.gateway import Gateway
    from ferro.registry import build_registry

    text = ("providers: {a: {type: stub}}\n"
            "plugins:\n"
            "  - name: response-cache\n"
            "    config: {max_age: soon}\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:4: plugins\[0\]\.config\.max_age"):
        Gateway(parse_config(text, "cfg.yaml", env={}), build_registry(stub_plugins), {})
    bad = text.replace("max_age: soon", "max_entries: 0")
    with pytest.raises(ConfigError, match="max_entries must be at least 1"):
        Gateway(parse_config(bad, "cfg.yaml", env={}), build_registry(stub_plugins), {})


async def test_a_reload_that_keeps_the_cache_section_keeps_the_entries(ferro_client,
                                                                      stub_plugins):
    client, _ = await start(ferro_client, stub_plugins, cached())
    await client.post("/v1/chat/completions", json=CHAT)
    same = parse_config(orjson.dumps({**cached(), "aliases": {"fast": "m"}}).decode(),
                        "c.json", env={})
    reload(client.app, same)
    hit = await client.post("/v1/chat/completions", json=CHAT)
    assert hit.headers["X-Ferro-Cache"] == "HIT"
    changed = parse_config(orjson.dumps(cached(max_entries=7)).decode(), "c.json", env={})
    reload(client.app, changed)
    assert client.app[PIPELINE].gateway.cache.options.max_entries == 7
    miss = await client.post("/v1/chat/completions", json=CHAT)
    assert miss.headers["X-Ferro-Cache"] == "MISS"


async def test_an_after_request_refusal_is_never_stored(ferro_client, stub_plugins):
    from ferro import RejectedError

    class Refuse:
        def __init__(self, options):
            pass

        async def after_request(self, ctx):
            if isinstance(ctx.response, ChatResponse) and not ctx.stream:
                raise RejectedError("no", code="output_blocked")

    class Plugins:
        @hookimpl
        def register_plugins(self, register):
            register("refuse", Refuse)

    stub_plugins.register(Plugins(), name="refuse-plugin")
    cfg = cached()
    cfg["plugins"] = [{"name": "refuse", "stage": "after_request"}]
    client, _ = await start(ferro_client, stub_plugins, cfg)
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 400
    assert len(client.app[PIPELINE].gateway.cache) == 0
