"""``GET /metrics`` on a gateway app: the exposition, the breaker gauge as the current
config has it, the API key, and the multiprocess directory check."""

import asyncio

import pytest
from ferro import ConfigError
from ferro.app import reload
from ferro.testing import as_config, stub_config
from ferro_metrics_prometheus import METRICS
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.parser import text_string_to_metric_families

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def breaker_config(*names, failing=(), timeout=3600):
    """Stub targets ``names`` behind the fallback strategy, each with a breaker that opens
    on its first failure; those in ``failing`` answer 503."""
    config = stub_config(*names, strategy="fallback")
    for name in failing:
        config["providers"][name]["fail_status"] = 503
    for target in config["targets"]:
        target["circuit_breaker"] = {"failure_threshold": 1, "timeout": timeout}
    return config


async def scrape(client, **headers):
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    return {family.name: family for family in text_string_to_metric_families(await resp.text())}


async def breaker_states(client):
    families = await scrape(client)
    return {s.labels["provider"]: s.value
            for s in families["gateway_circuit_breaker_state"].samples}


async def settled(client, name, labels, expected):
    """The value of sample ``name`` once it is ``expected`` (the exchange of a request is
    counted just after its reply was sent)."""
    for _ in range(50):
        families = await scrape(client)
        found = [s.value for f in families.values() for s in f.samples
                 if s.name == name and s.labels == labels]
        if found == [expected]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name}{labels}: {found}, not {expected}")


async def test_requests_served_show_in_the_text_exposition(ferro_client, stub_plugins):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json=CHAT)
        assert resp.status == 200
    await settled(client, "gateway_requests_total",
                  {"provider": "a", "model": "m", "status": "success"}, 2)

    resp = await client.get("/metrics")
    assert resp.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
    families = await scrape(client)
    assert families["gateway_tokens_input"].samples[0].value == 10


async def test_a_scraper_asking_for_openmetrics_gets_it(ferro_client, stub_plugins):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == OPENMETRICS
    assert (await resp.text()).endswith("# EOF\n")


async def test_the_breaker_gauge_follows_each_state_change(ferro_client, stub_plugins):
    client = await ferro_client(breaker_config("a", "b", failing=["a"], timeout=0.05),
                                pm=stub_plugins)
    metrics = client.app[METRICS]
    assert await breaker_states(client) == {"a": 0, "b": 0}

    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.headers["X-Ferro-Provider"] == "b"
    # set by the change itself, before any scrape
    assert metrics.registry.get_sample_value("gateway_circuit_breaker_state",
                                             {"provider": "a"}) == 1
    assert await breaker_states(client) == {"a": 1, "b": 0}
    await asyncio.sleep(0.1)  # past the breaker's timeout: half-open when next looked at
    assert await breaker_states(client) == {"a": 2, "b": 0}


async def test_a_started_gateway_holds_its_breakers_states_before_any_scrape(
        ferro_client, stub_plugins):
    client = await ferro_client(breaker_config("a", "b"), pm=stub_plugins)
    registry = client.app[METRICS].registry
    assert [registry.get_sample_value("gateway_circuit_breaker_state", {"provider": name})
            for name in ("a", "b")] == [0, 0]


async def test_after_a_reload_the_gauge_shows_the_new_targets(ferro_client, stub_plugins):
    client = await ferro_client(breaker_config("a", "b", failing=["a"]), pm=stub_plugins)
    await client.post("/v1/chat/completions", json=CHAT)
    assert await breaker_states(client) == {"a": 1, "b": 0}

    reload(client.app, as_config(breaker_config("b", "c")))
    assert await breaker_states(client) == {"b": 0, "c": 0}
    reload(client.app, as_config(stub_config("b", "c")))  # no breakers at all
    assert await breaker_states(client) == {}


async def test_with_api_keys_configured_a_scrape_needs_one(ferro_client, stub_plugins):
    config = {**stub_config("a"), "server": {"api_keys": ["sk-scrape"]}}
    client = await ferro_client(config, pm=stub_plugins)

    resp = await client.get("/metrics")
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "authentication_error"
    families = await scrape(client, Authorization="Bearer sk-scrape")
    assert "gateway_requests" in families


def test_a_multiprocess_dir_that_is_no_directory_is_a_config_error(ferro_app, stub_plugins,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"PROMETHEUS_MULTIPROC_DIR=.*missing is "
                                          r"not a directory"):
        ferro_app(stub_config("a"), pm=stub_plugins)
