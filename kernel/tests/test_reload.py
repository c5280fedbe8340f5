"""Config reload: validated, built and swapped atomically; in-flight streams finish on the
old config; breaker state carries over for targets that did not change; an invalid config
leaves the old one serving."""

import asyncio

import aiohttp
import pytest
from ferro import ConfigError
from ferro.app import PIPELINE, reload
from ferro.testing import as_config, stub_config

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def breaker_config(config):
    config["targets"][0]["circuit_breaker"] = {"failure_threshold": 1, "timeout": "60s"}
    return config


async def content(resp) -> str:
    return (await resp.json())["choices"][0]["message"]["content"]


async def test_a_stream_in_flight_finishes_on_the_old_config(ferro_server, stub_plugins):
    server = await ferro_server(stub_config("a", reply="old one two three", delay=0.05),
                                pm=stub_plugins)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/v1/chat/completions"),
                                json={**CHAT, "stream": True}) as resp:
            first = await resp.content.readline()
            assert first.startswith(b"data: ")
            old = server.app[PIPELINE].gateway
            reload(server.app, as_config(stub_config("a", reply="new")))
            async with session.post(server.make_url("/v1/chat/completions"), json=CHAT) as new:
                assert await content(new) == "new"
            rest = await resp.read()
        assert b"three" in rest and rest.endswith(b"data: [DONE]\n\n")
    for _ in range(50):
        if old._closed:
            break
        await asyncio.sleep(0.01)
    assert old._closed, "the old config is closed once its last request has finished"


async def test_breakers_carry_over_only_for_unchanged_targets(ferro_client, stub_plugins):
    client = await ferro_client(breaker_config(stub_config("a")), pm=stub_plugins)
    app = client.app
    breaker = app[PIPELINE].gateway.targets[0].breaker
    breaker.record_failure()
    assert breaker.state.name == "OPEN"
    same = breaker_config(stub_config("a"))
    same["aliases"] = {"fast": "m"}
    assert reload(app, as_config(same)).targets[0].breaker is breaker
    changed = breaker_config(stub_config("a", reply="other"))
    fresh = reload(app, as_config(changed)).targets[0].breaker
    assert fresh is not breaker and fresh.state.name == "CLOSED"


async def test_an_invalid_config_keeps_the_old_one_serving(ferro_client, stub_plugins):
    client = await ferro_client(stub_config("a", reply="still here"), pm=stub_plugins)
    before = client.app[PIPELINE].gateway
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        reload(client.app, as_config({**stub_config("a"), "strategy": {"mode": "nope"}}))
    assert client.app[PIPELINE].gateway is before
    assert await content(await client.post("/v1/chat/completions", json=CHAT)) == "still here"


class Closable:
    """A request plugin holding a client that must be closed with its config."""

    closed: list["Closable"] = []

    def __init__(self, options):
        self.options = options

    async def before_request(self, ctx):
        return None

    async def aclose(self):
        Closable.closed.append(self)


async def test_a_retired_config_closes_its_plugin_instances(ferro_client, stub_plugins):
    from ferro import hookimpl

    class Registers:
        @hookimpl
        def register_plugins(self, register):
            register("closable", Closable)

    stub_plugins.register(Registers())
    Closable.closed.clear()
    config = {**stub_config("a"), "plugins": [{"name": "closable", "config": {"n": 1}}]}
    client = await ferro_client(config, pm=stub_plugins)
    old = client.app[PIPELINE].gateway
    reload(client.app, as_config({**stub_config("a"),
                                  "plugins": [{"name": "closable", "config": {"n": 2}}]}))
    for _ in range(50):
        if Closable.closed:
            break
        await asyncio.sleep(0.01)
    assert [c.options for c in Closable.closed] == [{"n": 1}] and old._closed
    await client.close()  # the app's shutdown closes the config in force
    assert [c.options for c in Closable.closed] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize("takes_it", [True, False])
async def test_a_plugin_may_take_over_a_reloaded_config_file(ferro_client, stub_plugins,
                                                              takes_it):
    from ferro import hookimpl
    from ferro.app import reload_file

    seen = []

    class KeepsItsOwn:
        @hookimpl
        def config_file_reloaded(self, app, config):
            seen.append(config)
            return True if takes_it else None

    stub_plugins.register(KeepsItsOwn())
    client = await ferro_client(stub_config("a", reply="in force"), pm=stub_plugins)
    edited = as_config(stub_config("a", reply="edited"))
    reload_file(client.app, edited)
    assert seen == [edited]
    async with client.post("/v1/chat/completions", json=CHAT) as resp:
        assert await content(resp) == ("in force" if takes_it else "edited")
