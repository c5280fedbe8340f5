"""Cost: the shipped price table, config overrides, and each exchange's cost computed from
the usage the provider reported (streams, embeddings and fallbacks included)."""

import asyncio

import pytest
from ferro import hookimpl
from ferro.operations import Usage
from ferro.pricing import Price, Pricing, shipped
from ferro.testing import stub_config


def test_chat_cost_counts_cache_reads_and_writes_at_their_own_prices():
    price = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(prompt_tokens=1000, completion_tokens=200, cached_tokens=600,
                  cache_creation_tokens=100)
    # 300 fresh x 3 + 600 read x 0.3 + 100 written x 3.75 + 200 out x 15, per million
    assert price.cost("chat", usage) == pytest.approx((900 + 180 + 375 + 3000) / 1e6)


def test_cache_prices_default_to_the_input_price():
    usage = Usage(prompt_tokens=100, completion_tokens=10, cached_tokens=40)
    assert Price(input=1.0, output=2.0).cost("chat", usage) == pytest.approx(120 / 1e6)


def test_lookups_are_remembered_within_a_bound(monkeypatch):
    import ferro.pricing

    monkeypatch.setattr(ferro.pricing, "MAX_REMEMBERED", 3)
    table = Pricing({"m": Price(input=1.0, output=1.0), "p/m": Price(input=2.0)})
    for _ in range(2):  # the second time from what was remembered
        assert table.find("m", "p").input == 2.0
        assert table.find("m", "q").input == 1.0
        assert table.find("m-2025-01-31", "q").input == 1.0  # a dated snapshot: its family's
        assert table.find("unknown") is None
        assert table.find("other", "p") is None
        assert len(table._found) <= 3


def test_embeddings_cost_uses_the_embedding_price():
    usage = Usage(prompt_tokens=5000)
    assert Price(embedding=0.02).cost("embeddings", usage) == pytest.approx(0.0001)
    assert Price(input=0.1).cost("embeddings", usage) == pytest.approx(0.0005)


def test_a_missing_price_is_unknown_never_zero():
    usage = Usage(prompt_tokens=10, completion_tokens=10)
    assert Price(input=1.0).cost("chat", usage) is None
    assert Price(output=1.0).cost("embeddings", usage) is None
    assert Pricing({}).find("no-such-model", "openai") is None


def test_the_shipped_table_prices_the_default_models_of_each_provider():
    table = shipped()
    for model in ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash",
                  "mistral-large-latest", "llama-3.3-70b-versatile", "command-r-plus",
                  "deepseek-chat", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"):
        price = table[model]
        assert price.input > 0 and price.output > 0 and price.tier is not None, model
    assert table["text-embedding-3-small"].embedding == 0.02


def test_lookup_order_provider_entry_then_model_then_snapshot_family():
    pricing = Pricing({"gpt-4o": Price(input=2.5, output=10), "groq/gpt-4o": Price(input=1, output=1)})
    assert pricing.find("gpt-4o", "groq-eu", "groq").input == 1
    assert pricing.find("gpt-4o", "openai").input == 2.5
    assert pricing.find("gpt-4o-2024-08-06", "openai").input == 2.5
    assert pricing.find("gpt-4o-20240806", "openai").input == 2.5


def test_config_overrides_change_only_the_fields_they_set():
    pricing = Pricing.with_overrides({"gpt-4o": {"input": 2.0}, "my-model": {"input": 1, "output": 2}})
    assert pricing.find("gpt-4o").input == 2.0
    assert pricing.find("gpt-4o").output == shipped()["gpt-4o"].output
    assert pricing.find("my-model") == Price(input=1, output=2)


class Exchanges:
    def __init__(self):
        self.seen = []

    @hookimpl
    def exchange_completed(self, exchange):
        self.seen.append(exchange)


@pytest.fixture
def exchanges(stub_plugins):
    listener = Exchanges()
    stub_plugins.register(listener, name="exchanges")
    return listener


async def settle(exchanges, n):
    for _ in range(200):
        if len(exchanges.seen) >= n:
            return exchanges.seen
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(exchanges.seen)} exchanges, expected {n}")


async def test_each_exchange_carries_its_cost(ferro_client, stub_plugins, exchanges):
    config = stub_config("down", "up", strategy="fallback")
    config["providers"]["down"]["fail_status"] = 503
    config["pricing"] = {"m": {"input": 2.0, "output": 10.0}, "e": {"embedding": 0.5},
                         "up/dear": {"input": 100.0, "output": 100.0}}
    client = await ferro_client(config, pm=stub_plugins)
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for body in (chat, {**chat, "stream": True}, {**chat, "model": "dear"},
                 {**chat, "model": "unpriced"}):
        resp = await client.post("/v1/chat/completions", json=body)
        assert resp.status == 200
        await resp.read()
    resp = await client.post("/v1/embeddings", json={"model": "e", "input": ["a", "b"]})
    assert resp.status == 200
    seen = await settle(exchanges, 5)
    # the stub reports 5 prompt tokens and 2 completion tokens ("stub answer"); 2 to embed
    assert [ex.provider for ex in seen] == ["up"] * 5
    assert seen[0].cost == pytest.approx((5 * 2.0 + 2 * 10.0) / 1e6)  # after a fallback
    assert seen[1].cost == pytest.approx((5 * 2.0 + 2 * 10.0) / 1e6)  # streamed
    assert seen[2].cost == pytest.approx((5 + 2) * 100.0 / 1e6)  # the provider's own price
    assert seen[3].cost is None  # no price known
    assert seen[4].cost == pytest.approx(2 * 0.5 / 1e6)
    assert seen[0].upstream_model == "m"


def test_a_provider_entry_takes_unset_fields_from_the_model_entry():
    pricing = Pricing.with_overrides({"my-groq/gpt-4o-mini": {"input": 0.1, "output": 0.2}})
    price = pricing.find("gpt-4o-mini", "my-groq")
    assert (price.input, price.output, price.tier) == (0.1, 0.2, shipped()["gpt-4o-mini"].tier)
