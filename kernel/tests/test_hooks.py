"""Every hook is documented in the README and exercised by a test."""

import asyncio
import inspect
import json
from pathlib import Path

import attrs
import pytest
from aiohttp import web
from ferro import hookimpl, hookspecs, make_plugin_manager
from ferro.registry import build_registry

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "ferro_spec"))


def test_the_contract_has_the_documented_hooks():
    assert HOOKS == ["breaker_state_changed", "config_file_reloaded", "configure_app",
                     "exchange_completed", "register_caches", "register_commands",
                     "register_plugins", "register_providers", "register_storage",
                     "register_strategies"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_in_readme(hook):
    readme = (ROOT / "README.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"{hook}({params})" in readme


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = "".join(p.read_text() for p in (ROOT / "kernel" / "tests").glob("test_*.py")
                    if p.name != "test_hooks.py")
    tests += (ROOT / "kernel" / "tests" / "test_hooks.py").read_text().split("# --- " + "uses")[-1]
    assert f"def {hook}(" in tests


# --- uses of the hooks not exercised elsewhere


class Backends:
    @hookimpl
    def register_caches(self, register):
        register("test-cache", dict)

    @hookimpl
    def register_storage(self, register):
        register("test-storage", list)

    @hookimpl
    def register_strategies(self, register):
        class Last:
            """Routes every request to the last target."""

            def __init__(self, config, targets):
                self.target = targets[-1]

            async def route(self, request, call):
                return await call(self.target)

        register("last", Last)

    @hookimpl
    def configure_app(self, app, config):
        async def ping(request):
            return web.json_response({"pong": config.strategy.mode})

        async def refuse(request):
            from ferro import PermissionDeniedError

            raise PermissionDeniedError("admin scope required")

        app.router.add_get("/ping", ping)
        app.router.add_get("/refuse", refuse)


def test_cache_and_storage_backends_are_registered():
    pm = make_plugin_manager(env={})
    pm.register(Backends(), name="backends")
    registry = build_registry(pm)
    assert registry.caches["test-cache"] is dict
    assert registry.storage["test-storage"] is list
    assert registry.registered_by("backends") == {
        "strategies": ["last"], "caches": ["test-cache"], "storage": ["test-storage"]}


async def test_configure_app_adds_routes(ferro_client):
    pm = make_plugin_manager(env={})
    pm.register(Backends(), name="backends")
    client = await ferro_client({"strategy": {"mode": "fallback"}}, pm=pm)
    assert await (await client.get("/ping")).json() == {"pong": "fallback"}
    refused = await client.get("/refuse")  # a plugin route's errors use the error schema
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "permission_denied"
    assert refused.headers["X-Request-ID"]
    wrong = await client.post("/ping")
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET, HEAD"


async def test_a_plugin_strategy_routes_requests(ferro_client):
    pm = make_plugin_manager(env={})
    pm.register(Backends(), name="backends")
    client = await ferro_client({
        "strategy": {"mode": "last"},
        "providers": {"one": {"type": "echo"}, "two": {"type": "echo"}},
        "targets": [{"virtual_key": "one"}, {"virtual_key": "two"}]}, pm=pm)
    resp = await client.post("/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert (await resp.json())["provider"] == "two"


class TakesNothing:
    """Implementations may take fewer arguments than the spec, even none."""

    calls = 0

    @hookimpl
    def register_plugins(self):
        TakesNothing.calls += 1

    @hookimpl
    def exchange_completed(self):
        TakesNothing.calls += 1


async def test_an_implementation_without_arguments_is_called(ferro_client):
    pm = make_plugin_manager(env={})
    pm.register(TakesNothing(), name="nothing")
    build_registry(pm)
    assert TakesNothing.calls == 1
    client = await ferro_client({"providers": {"echo": {}}}, pm=pm)
    resp = await client.post("/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status == 200
    assert TakesNothing.calls == 3  # the registry again (create_app), then the exchange


def test_every_public_name_is_listed_for_plugin_authors():
    import ferro

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### For plugin authors")[1].split("\n## ")[0]
    missing = [name for name in ferro.__all__ if f"`{name}`" not in section]
    assert not missing, f"README's plugin-author list lacks {missing}"


async def test_breaker_changes_reach_their_listeners_and_survive_a_reload(ferro_client,
                                                                         stub_plugins):
    from ferro import BreakerState
    from ferro.app import PIPELINE, reload
    from ferro.config import parse_config
    from ferro.testing import stub_config

    changes = []

    class Listener:
        @hookimpl
        def breaker_state_changed(self, provider, old, new):
            changes.append((provider, old, new))

    stub_plugins.register(Listener(), name="breaker-listener")
    cfg = stub_config("a", fail_status=503)
    cfg["targets"][0]["circuit_breaker"] = {"failure_threshold": 2, "timeout": "1h"}
    client = await ferro_client(cfg, pm=stub_plugins)
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        await client.post("/v1/chat/completions", json=chat)
    assert changes == [("a", BreakerState.CLOSED, BreakerState.OPEN)]
    reload(client.app, parse_config(json.dumps({**cfg, "aliases": {"x": "m"}}),
                                    "c.json", env={}))
    breaker = client.app[PIPELINE].gateway.targets[0].breaker
    breaker.config = attrs.evolve(breaker.config, timeout=0)  # due for a trial call now
    await client.post("/v1/chat/completions", json=chat)
    assert changes[1:] == [("a", BreakerState.OPEN, BreakerState.HALF_OPEN),
                           ("a", BreakerState.HALF_OPEN, BreakerState.OPEN)]


async def test_a_listener_registered_in_configure_app_hears_that_apps_exchanges(ferro_client,
                                                                               stub_plugins):
    from ferro.testing import stub_config

    heard = []

    class PerApp:
        def __init__(self, app):
            self.app = app

        @hookimpl
        def exchange_completed(self, exchange):
            heard.append((self.app, exchange.status))

    class Installer:
        @hookimpl
        def configure_app(self, app):
            app_pm.register(PerApp(app), name="per-app-listener")

    app_pm = stub_plugins
    stub_plugins.register(Installer(), name="installer")
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    resp = await client.post("/v1/chat/completions",
                             json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    await resp.read()
    for _ in range(50):
        if heard:
            break
        await asyncio.sleep(0.01)
    assert heard == [(client.app, 200)]
