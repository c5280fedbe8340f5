"""The webhooks in a gateway: the ``plugins[]`` entry that configures them (and its errors,
located in the file), and the events the app's listener queues for its requests, breakers
and thresholds. What is queued is recorded here, not posted (see the e2e tests for that)."""

import asyncio

import pytest
from ferro import BreakerState, ConfigError, make_plugin_manager, parse_config
from ferro.app import PIPELINE, PLUGIN_MANAGER
from ferro.testing import installed_plugins, stub_config
from ferro_webhooks import WEBHOOKS, Webhooks

CHAT = "/v1/chat/completions"
URL = "http://127.0.0.1:9/hook"
ENDPOINT = {"url": URL, "secret": "s"}


def chat(model="m"):
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def with_webhooks(config, **options):
    config["plugins"] = [{"name": "webhooks",
                          "config": {"endpoints": [ENDPOINT], **options}}]
    return config


async def start(ferro_client, stub_plugins, config):
    """The gateway's client, and the list its webhooks publish into."""
    client = await ferro_client(config, pm=stub_plugins)
    published = []
    client.app[WEBHOOKS].outbox.publish = published.append
    return client, published


async def post(client, body):
    resp = await client.post(CHAT, json=body)
    await resp.read()
    return resp.status


def test_the_entry_is_registered():
    row = installed_plugins()["webhooks"]
    assert row["distribution"] == "ferro-webhooks"
    assert row["registers"] == {"plugins": ["webhooks"]}


async def test_a_gateway_without_the_entry_has_no_webhooks(ferro_client, stub_plugins):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    assert WEBHOOKS not in client.app
    assert not any(isinstance(p, Webhooks) for p in stub_plugins.get_plugins())


async def test_a_failed_request_is_published_with_its_exchange(ferro_client, stub_plugins):
    client, published = await start(ferro_client, stub_plugins,
                                     with_webhooks(stub_config("a", fail_status=503)))
    assert await post(client, chat()) == 503
    [event] = published
    assert event.type == "request.failed"
    data = event.data
    assert (data["status"], data["provider"], data["model"], data["operation"]) == (
        503, "a", "m", "chat")
    assert data["error"]["message"] == "a: failure 503"
    assert data["request_id"] and data["duration"] > 0
    assert data["targets"] == ["a"]


async def test_answered_requests_and_client_errors_are_not_failures(ferro_client, stub_plugins):
    client, published = await start(ferro_client, stub_plugins, with_webhooks(stub_config("a")))
    assert await post(client, chat()) == 200
    assert await post(client, {"model": "m"}) == 400
    assert published == []


async def test_client_errors_are_failures_when_asked(ferro_client, stub_plugins):
    client, published = await start(ferro_client, stub_plugins,
                                    with_webhooks(stub_config("a"), client_errors=True))
    assert await post(client, {"model": "m"}) == 400
    assert [(e.type, e.data["status"]) for e in published] == [("request.failed", 400)]


async def test_an_endpoint_not_sent_request_failed_costs_no_event(ferro_client, stub_plugins):
    config = stub_config("a", fail_status=503)
    config["plugins"] = [{"name": "webhooks", "config": {
        "endpoints": [{**ENDPOINT, "events": ["circuit_breaker.opened"]}]}}]
    client, published = await start(ferro_client, stub_plugins, config)
    assert await post(client, chat()) == 503
    assert published == []


async def test_a_breaker_opening_is_published(ferro_client, stub_plugins):
    config = with_webhooks(stub_config("a", fail_status=503))
    config["targets"][0]["circuit_breaker"] = {"failure_threshold": 2, "timeout": "60s"}
    client, published = await start(ferro_client, stub_plugins, config)
    for _ in range(3):
        await post(client, chat())
    breakers = [e for e in published if e.type.startswith("circuit_breaker.")]
    assert [(e.type, e.data) for e in breakers] == [
        ("circuit_breaker.opened", {"provider": "a", "from": "closed", "to": "open"})]


async def test_a_threshold_is_published_once_when_crossed(ferro_client, stub_plugins):
    config = with_webhooks(stub_config("a", fail_status=503), check_every=0.02, thresholds=[
        {"metric": "error_rate", "above": 0.5, "min_requests": 2, "window": "1m"}])
    client, published = await start(ferro_client, stub_plugins, config)
    await post(client, chat())
    await post(client, chat())

    def crossed():
        return [e for e in published if e.type == "threshold.crossed"]

    for _ in range(100):
        if crossed():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # several more checks
    assert [e.data["value"] for e in crossed()] == [1.0]


async def test_the_listener_leaves_the_plugin_manager_when_the_app_stops(ferro_client,
                                                                        stub_plugins):
    client = await ferro_client(with_webhooks(stub_config("a")), pm=stub_plugins)
    webhooks = client.app[WEBHOOKS]
    assert client.app[PLUGIN_MANAGER].is_registered(webhooks)
    await client.close()
    assert not stub_plugins.is_registered(webhooks)


def yaml_config(entries, env=None):
    text = "providers:\n  a: {type: echo}\ntargets: [{virtual_key: a}]\nplugins:\n" + entries
    return parse_config(text, "gateway.yaml", env=env or {})


def build(config):
    from ferro.app import create_app

    return create_app(config, make_plugin_manager(env={}), env={})


async def test_a_yaml_entry_with_env_secret_and_fractional_thresholds_loads():
    app = build(yaml_config(
        "  - name: webhooks\n"
        "    config:\n"
        "      endpoints: [{url: 'http://127.0.0.1:9/x', secret: '${HOOK_SECRET}'}]\n"
        "      thresholds: [{metric: error_rate, above: 0.05, window: 5m}]\n"
        "      delivery: {retry: {factor: 1.5, jitter: 0.25}}\n",
        env={"HOOK_SECRET": "from-env"}))
    options = app[WEBHOOKS].options
    assert options.endpoints[0].secret == "from-env"
    assert (options.thresholds[0].above, options.thresholds[0].window) == (0.05, 300.0)
    assert options.delivery.retry.factor == 1.5


@pytest.mark.parametrize(("config", "message"), [
    ("{endpoints: [{url: 'ftp://x', secret: s}]}",
     "gateway.yaml:6: plugins[0].config.endpoints[0].url: must be an http:// or https:// URL"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x'}]}",
     "gateway.yaml:6: plugins[0].config.endpoints[0].secret: this key is required"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x', secret: ' '}]}",
     "plugins[0].config.endpoints[0].secret: must not be empty"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x', secret: s, events: [request.fail]}]}",
     "plugins[0].config.endpoints[0].events: unknown event type 'request.fail'"),
    ("{endpoints: []}", "plugins[0].config.endpoints: must list at least one endpoint"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x', secret: s}], retries: 3}",
     "plugins[0].config.retries: unknown key 'retries'"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x', secret: s}], thresholds: [{metric: p99, "
     "above: 1}]}", "plugins[0].config.thresholds[0].metric: must be one of error_rate"),
    ("{endpoints: [{url: 'http://127.0.0.1:9/x', secret: s}], thresholds: [{metric: spend, "
     "above: 5, recover_below: 6}]}",
     "plugins[0].config.thresholds[0].recover_below: must be between 0 and above (5)"),
])
def test_a_wrong_entry_is_a_config_error_naming_the_key_and_line(config, message):
    entry = f"  - name: webhooks\n    config: {config}\n"
    with pytest.raises(ConfigError) as info:
        build(yaml_config(entry))
    assert message in str(info.value)


def test_the_entry_needs_no_stage_and_adds_no_request_step():
    app = build(yaml_config("  - name: webhooks\n"
                            "    config: {endpoints: [{url: 'http://127.0.0.1:9/x', secret: s}]}\n"))
    assert WEBHOOKS in app
    gateway = app[PIPELINE].gateway
    assert gateway.before == gateway.after == gateway.on_error == gateway.on_chunk == []


def test_only_one_entry_may_be_enabled():
    entry = ("  - name: webhooks\n"
             "    config: {endpoints: [{url: 'http://127.0.0.1:9/%s', secret: s}]}\n")
    with pytest.raises(ConfigError, match=r"gateway.yaml:7: plugins\[1\].name: only one "
                                          r"webhooks entry may be enabled"):
        build(yaml_config(entry % "a" + entry % "b"))
    disabled = entry % "b" + "    enabled: false\n"
    assert WEBHOOKS in build(yaml_config(entry % "a" + disabled))


def test_breaker_events_are_only_queued_for_endpoints_that_want_them():
    from ferro_webhooks.options import Endpoint, Options

    webhooks = Webhooks(Options([Endpoint(URL, "s", ["circuit_breaker.closed"])]))
    webhooks.breaker_state_changed("a", BreakerState.CLOSED, BreakerState.OPEN)
    webhooks.breaker_state_changed("a", BreakerState.HALF_OPEN, BreakerState.CLOSED)
    queue = webhooks.outbox.channels[0].queue
    assert queue.qsize() == 1
    assert queue.get_nowait().type == "circuit_breaker.closed"
