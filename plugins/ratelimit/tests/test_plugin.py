"""The plugin in a gateway and on its own: the older gateway's config, per-key limits and
their overrides, per-address limits behind trusted proxies, the reply's headers, token
debits after a stream, per-provider limits, and config errors."""

from pathlib import Path

import ferro.attempt
import ferro.gateway
import pytest
from ferro import (
    ChatRequest,
    ConfigError,
    Exchange,
    GatewayError,
    Identity,
    RateLimitError,
    RequestContext,
    Target,
    Usage,
)
from ferro.app import PIPELINE
from ferro.config import ConfigSource, build_options
from ferro.testing import StubProvider, stub_config
from ferro_ratelimit import Options, RateLimit
from ferro_ratelimit.plugin import FORWARDED_IP, RATE_LIMITED

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
KEYS = ["sk-one", "sk-two"]


def gateway_config(name="ratelimit", api_keys=(), **config):
    cfg = stub_config("a")
    cfg["plugins"] = [{"name": name, "stage": "before_request", "config": config}]
    if api_keys:
        cfg["server"] = {"api_keys": list(api_keys)}
    return cfg


def options(**config) -> Options:
    """Options as a config file's entry gives them."""
    return build_options(RateLimit, config, ConfigSource("<test>", None), ())


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


async def statuses(client, times, headers=None, body=CHAT):
    out = []
    for _ in range(times):
        resp = await client.post("/v1/chat/completions", json=body, headers=headers or {})
        await resp.read()
        out.append(resp.status)
    return out


def context(identity=None, ip="198.51.100.7", headers=None):
    return RequestContext(ChatRequest(dict(CHAT)), "req-1", identity, headers or {},
                          client_ip=ip)


def exchange(identity=None, ip="198.51.100.7", tokens=0, provider="a", attempts=1,
             metadata=None):
    return Exchange(request_id="req-1", operation="chat", model="m", provider=provider,
                    stream=True, status=200, started=0.0, duration=0.1,
                    usage=Usage(total_tokens=tokens), identity=identity, client_ip=ip,
                    attempts=attempts, metadata=metadata or {})


KEY = Identity("key-1", "team-a", frozenset({"inference"}))


# --- the older gateway's config ---------------------------------------------------------------


async def test_the_older_gateways_config_loads_unchanged_as_a_limit_per_key(ferro_client,
                                                                           stub_plugins):
    cfg = stub_config("a")
    cfg["server"] = {"api_keys": KEYS}
    cfg["plugins"] = [{"name": "rate-limit", "type": "ratelimit", "stage": "before_request",
                       "enabled": True, "config": {"requests_per_second": 0.01, "burst": 3}}]
    client = await ferro_client(cfg, pm=stub_plugins)
    assert await statuses(client, 4, bearer("sk-one")) == [200, 200, 200, 429]
    assert await statuses(client, 1, bearer("sk-two")) == [200], "each key has its own bucket"


def test_the_older_gateways_defaults_are_100_a_second_with_a_burst_of_the_same():
    plugin = RateLimit(options())
    assert (plugin.per_key.requests.per_second, plugin.per_key.requests.capacity) == (100, 100)
    assert plugin.per_key.tokens is None and plugin.per_ip is None
    assert RateLimit(options(requests_per_second=10)).per_key.requests.capacity == 10


# --- the reply --------------------------------------------------------------------------------


async def test_over_the_limit_is_a_429_with_retry_after_and_the_limit_headers(ferro_client,
                                                                              stub_plugins):
    cfg = gateway_config(api_keys=KEYS, per_key={"requests_per_second": 0.5, "burst": 2})
    client = await ferro_client(cfg, pm=stub_plugins)
    first = await client.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-one"))
    assert first.status == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "Retry-After" not in first.headers
    await client.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-one"))

    refused = await client.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-one"))
    assert refused.status == 429
    body = await refused.json()
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["error"]["message"].startswith(
        "rate limit exceeded for API key server.api_keys[0]: 0.5 requests per second (burst 2)")
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert refused.headers["x-should-retry"] == "true"


async def test_with_api_keys_off_the_per_key_limit_applies_to_each_address(ferro_client,
                                                                          stub_plugins):
    cfg = gateway_config(per_key={"requests_per_second": 0.01, "burst": 2},
                         trusted_proxies=["127.0.0.1"])
    client = await ferro_client(cfg, pm=stub_plugins)
    one, two = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    assert await statuses(client, 3, one) == [200, 200, 429]
    assert await statuses(client, 1, two) == [200]
    resp = await client.post("/v1/chat/completions", json=CHAT, headers=one)
    assert (await resp.json())["error"]["message"].startswith(
        "rate limit exceeded for client 203.0.113.1")


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(ferro_client, stub_plugins):
    cfg = gateway_config(per_ip={"requests_per_second": 0.01, "burst": 2},
                         per_key={"requests_per_second": 0})
    client = await ferro_client(cfg, pm=stub_plugins)
    spoofs = [{"X-Forwarded-For": f"203.0.113.{i}"} for i in range(3)]
    assert [(await statuses(client, 1, h))[0] for h in spoofs] == [200, 200, 429]


# --- per-key limits and their overrides ---------------------------------------------------------


async def test_a_key_named_in_keys_gets_that_limit_instead(ferro_client, stub_plugins):
    cfg = gateway_config(api_keys=KEYS, per_key={"requests_per_second": 0.01, "burst": 1},
                         keys={"server.api_keys[1]": {"requests_per_second": 0.01, "burst": 3}})
    client = await ferro_client(cfg, pm=stub_plugins)
    assert await statuses(client, 2, bearer("sk-one")) == [200, 429]
    assert await statuses(client, 4, bearer("sk-two")) == [200, 200, 200, 429]


async def test_a_keys_rate_limit_attribute_is_its_limit():
    plugin = RateLimit(options(per_key={"requests_per_second": 100}, keys={
        "team-a": {"requests_per_second": 100}}))
    own = Identity("key-1", "team-a", attributes={"rate_limit": {
        "requests_per_second": 0.01, "burst": 2}})
    await plugin.before_request(context(own))
    await plugin.before_request(context(own))
    with pytest.raises(RateLimitError):
        await plugin.before_request(context(own))


async def test_a_changed_rate_limit_attribute_applies_at_once():
    plugin = RateLimit(options(per_key={"requests_per_second": 100}))
    key = Identity("key-1", "team-a", attributes={"rate_limit": {"requests_per_second": 100}})
    for _ in range(3):
        await plugin.before_request(context(key))
    tight = Identity("key-1", "team-a", attributes={"rate_limit": {
        "requests_per_second": 0.01, "burst": 1}})
    await plugin.before_request(context(tight))
    with pytest.raises(RateLimitError):
        await plugin.before_request(context(tight))


async def test_a_callers_checks_are_worked_out_once():
    plugin = RateLimit(options(per_key={"requests_per_second": 100}, per_ip={
        "requests_per_second": 100}))
    first, again = context(KEY), context(KEY)
    await plugin.before_request(first)
    await plugin.before_request(again)
    assert first.reply_headers["x-ratelimit-remaining-requests"] == "99"
    assert again.reply_headers["x-ratelimit-remaining-requests"] == "98"
    assert len(plugin._request_checks) == 1
    await plugin.before_request(context(KEY, ip="198.51.100.8"))
    assert len(plugin._request_checks) == 2, "an address of its own has buckets of its own"


async def test_a_rate_limit_attribute_with_nothing_on_leaves_the_key_unlimited():
    plugin = RateLimit(options(per_key={"requests_per_second": 0.01, "burst": 1}))
    free = Identity("key-1", "team-a", attributes={"rate_limit": {}})
    for _ in range(3):
        ctx = context(free)
        await plugin.before_request(ctx)
        assert ctx.reply_headers == {}


@pytest.mark.parametrize(("attribute", "says"), [
    ("10/s", "expected a mapping of requests_per_second, burst, tokens_per_minute, got str"),
    ({"rps": 1}, "unknown key 'rps'"),
    ({"requests_per_second": "fast"}, "requests_per_second: expected a number, got 'fast'"),
    ({"requests_per_second": -1}, "requests_per_second: must not be negative"),
    ({"tokens_per_minute": 0.5}, "tokens_per_minute: must be 0 (off) or at least 1"),
])
async def test_an_invalid_rate_limit_attribute_is_a_500_that_names_the_key(attribute, says):
    plugin = RateLimit(options())
    broken = Identity("key-1", "team-a", attributes={"rate_limit": attribute})
    with pytest.raises(GatewayError) as caught:
        await plugin.before_request(context(broken))
    assert caught.value.status == 500
    assert caught.value.code == "invalid_rate_limit"
    assert "API key team-a has an invalid rate_limit attribute" in caught.value.message
    assert says in caught.value.message


# --- what a refusal records ---------------------------------------------------------------------


async def test_a_refusal_records_whose_limit_it_was():
    plugin = RateLimit(options(per_key={"requests_per_second": 0.01, "burst": 1},
                               per_ip={"requests_per_second": 0.01, "burst": 2}))
    await plugin.before_request(context(KEY))
    refused = context(KEY)
    with pytest.raises(RateLimitError):
        await plugin.before_request(refused)
    assert refused.metadata[RATE_LIMITED] == "api_key"

    other_key = Identity("key-2", "team-b")
    await plugin.before_request(context(other_key))  # the address's second request
    by_address = context(Identity("key-3", "team-c"))
    with pytest.raises(RateLimitError):
        await plugin.before_request(by_address)
    assert by_address.metadata[RATE_LIMITED] == "ip"


async def test_a_client_named_by_a_trusted_proxy_is_recorded():
    plugin = RateLimit(options(per_ip={"requests_per_second": 10}, trusted_proxies=["10.0.0.0/8"]))
    ctx = context(KEY, ip="10.0.0.2", headers={"x-forwarded-for": "203.0.113.9"})
    await plugin.before_request(ctx)
    assert ctx.metadata[FORWARDED_IP] == "203.0.113.9"
    direct = context(KEY, ip="203.0.113.9")
    await plugin.before_request(direct)
    assert FORWARDED_IP not in direct.metadata
    assert direct.reply_headers["x-ratelimit-remaining-requests"] == "8", "one bucket for both"


# --- tokens ---------------------------------------------------------------------------------------


async def test_a_streams_tokens_are_debited_once_it_has_ended(ferro_client, stub_plugins):
    # the stub's answer uses 5 prompt tokens and 2 completion tokens
    cfg = gateway_config(per_key={"tokens_per_minute": 8})
    client = await ferro_client(cfg, pm=stub_plugins)
    stream = {**CHAT, "stream": True}
    first = await client.post("/v1/chat/completions", json=stream)
    assert first.headers["x-ratelimit-remaining-tokens"] == "8", "nothing is taken up front"
    assert "[DONE]" in await first.text()
    second = await client.post("/v1/chat/completions", json=stream)
    assert second.headers["x-ratelimit-remaining-tokens"] == "1"
    await second.read()
    refused = await client.post("/v1/chat/completions", json=stream)
    assert refused.status == 429
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "8 tokens per minute" in (await refused.json())["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 45  # 7 tokens short at 8 a minute


def test_tokens_are_debited_from_the_caller_and_the_provider_that_answered():
    plugin = RateLimit(options(per_key={"requests_per_second": 10, "tokens_per_minute": 1000},
                               per_ip={"tokens_per_minute": 500},
                               per_provider={"tokens_per_minute": 2000}))
    plugin.exchange_completed(exchange(KEY, tokens=120))
    levels = {key: level for key, (level, _at) in plugin.backend.buckets.items()}
    assert levels == {"key:key-1:t": 880.0, "ip:198.51.100.7:t": 380.0,
                      "provider:a:t": 1880.0}


def test_a_keys_own_token_limit_is_debited_where_the_config_counts_no_tokens():
    plugin = RateLimit(options(per_key={"requests_per_second": 10}))
    own = Identity("key-1", "team-a", attributes={"rate_limit": {"tokens_per_minute": 600}})
    plugin.exchange_completed(exchange(KEY, tokens=40))
    assert not plugin.backend.buckets, "no limit counts tokens"
    plugin.exchange_completed(exchange(own, tokens=40))
    assert {key: level for key, (level, _at) in plugin.backend.buckets.items()} == {
        "key:key-1:t": 560.0}


@pytest.mark.parametrize("done", [
    exchange(KEY, tokens=0),  # refused, failed, or nothing reported
    exchange(KEY, tokens=50, attempts=0),  # answered from the cache: no upstream was called
])
def test_no_debit_without_tokens_an_upstream_used(done):
    plugin = RateLimit(options(per_key={"tokens_per_minute": 1000}))
    plugin.exchange_completed(done)
    assert not plugin.backend.buckets


def test_the_debit_goes_to_the_address_a_trusted_proxy_named():
    plugin = RateLimit(options(per_ip={"tokens_per_minute": 100}, trusted_proxies=["10.0.0.2"]))
    plugin.exchange_completed(exchange(KEY, ip="10.0.0.2", tokens=30,
                                       metadata={FORWARDED_IP: "203.0.113.9"}))
    assert list(plugin.backend.buckets) == ["ip:203.0.113.9:t"]


# --- per provider ---------------------------------------------------------------------------------


def target(name):
    return Target(name, StubProvider(name))


async def test_a_provider_over_its_limit_refuses_the_call_with_its_headers():
    plugin = RateLimit(options(per_provider={"requests_per_second": 0.01, "burst": 1},
                               providers={"b": {"requests_per_second": 0.01, "burst": 2}}))
    ctx = context(KEY)
    await plugin.before_attempt(ctx, target("a"))
    with pytest.raises(RateLimitError) as caught:
        await plugin.before_attempt(ctx, target("a"))
    assert ctx.metadata[RATE_LIMITED] == "provider"
    assert caught.value.message.startswith("rate limit exceeded for provider a: 0.01 requests")
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(caught.value.headers["Retry-After"]) >= 99
    assert caught.value.retryable, "another target may take it"

    await plugin.before_attempt(ctx, target("b"))  # the fallback's call goes ahead
    assert RATE_LIMITED not in ctx.metadata, "the earlier refusal was not the answer"
    await plugin.before_attempt(ctx, target("b"))
    with pytest.raises(RateLimitError):
        await plugin.before_attempt(ctx, target("b"))
    assert ctx.reply_headers == {}, "a provider's bucket is not the caller's to see"


def test_without_provider_limits_nothing_runs_before_each_upstream_call(ferro_app,
                                                                        stub_plugins):
    assert RateLimit(options(per_key={"requests_per_second": 1})).before_attempt is None
    assert RateLimit(options(per_provider={"requests_per_second": 1})).before_attempt
    keyed = ferro_app(gateway_config(per_key={"requests_per_second": 1}), pm=stub_plugins)
    assert keyed[PIPELINE].gateway.gates == []
    per_provider = ferro_app(gateway_config(per_provider={"requests_per_second": 1}),
                             pm=stub_plugins)
    assert len(per_provider[PIPELINE].gateway.gates) == 1


async def test_a_provider_without_a_limit_is_not_checked():
    plugin = RateLimit(options(providers={"b": {"requests_per_second": 1}}))
    for _ in range(5):
        await plugin.before_attempt(context(KEY), target("a"))
    assert not plugin.backend.buckets


def _kernel_calls_before_attempt() -> bool:
    return all("before_attempt" in Path(module.__file__).read_text()
               for module in (ferro.attempt, ferro.gateway))


@pytest.mark.skipif(not _kernel_calls_before_attempt(),
                    reason="needs the kernel to call plugins' before_attempt(ctx, target)")
async def test_a_gateway_falls_back_past_a_provider_over_its_limit(ferro_client,
                                                                  stub_plugins):
    cfg = stub_config("a", "b", strategy="fallback")
    cfg["plugins"] = [{"name": "ratelimit", "config": {
        "per_key": {"requests_per_second": 0},
        "per_provider": {"requests_per_second": 0.01, "burst": 1}}}]
    client = await ferro_client(cfg, pm=stub_plugins)
    served = []
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json=CHAT)
        assert resp.status == 200
        served.append(resp.headers["X-Ferro-Provider"])
    assert served == ["a", "b"]
    refused = await client.post("/v1/chat/completions", json=CHAT)
    assert refused.status == 429
    assert "for provider" in (await refused.json())["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "says"), [
    ({"per_key": {"requests_per_second": 1}, "requests_per_second": 5},
     "plugins[0].config.per_key: give either per_key or the older requests_per_second"),
    ({"trusted_proxies": ["10.0.0.0/33"]},
     "plugins[0].config.trusted_proxies: must list IP addresses or CIDR networks"),
    ({"backend": "sqlite"}, "plugins[0].config.backend: must be one of memory, redis"),
    ({"per_ip": {"burst": 0.5}}, "plugins[0].config.per_ip.burst: must be 0 (off) or at least 1"),
    ({"per_ip": {"rps": 1}}, "unknown key 'rps'"),
    ({"on_backend_error": "maybe"}, "must be one of allow, deny"),
])
def test_a_config_error_names_its_key(ferro_app, stub_plugins, config, says):
    with pytest.raises(ConfigError) as caught:
        ferro_app(gateway_config(**config), pm=stub_plugins)
    assert says in caught.value.message
