"""Discovery through entry points, allow- and block-lists, and the errors plugin authors see."""

import types

import pytest
from ferro import ConfigError, hookimpl, make_plugin_manager
from ferro.plugins import PluginLoadError
from ferro.registry import build_registry


class FakeEntryPoint:
    def __init__(self, name, plugin=None, error=None, dist="ferro-provider-fake"):
        self.name, self.value, self._plugin, self._error = name, f"{name}_mod", plugin, error
        self.dist = types.SimpleNamespace(name=dist, version="9.9")

    def load(self):
        if self._error:
            raise self._error
        return self._plugin


def provider_plugin(type_name):
    module = types.ModuleType("fake_plugin")

    @hookimpl
    def register_providers(register):
        register(type_name, object)

    module.register_providers = register_providers
    return module


@pytest.fixture
def entry_points(monkeypatch):
    def install(*eps):
        monkeypatch.setattr("ferro.plugins.metadata.entry_points", lambda group: list(eps))

    return install


def test_installed_packages_are_discovered():
    pm = make_plugin_manager(env={})
    registry = build_registry(pm)
    assert {"echo", "openai"} <= set(registry.providers)
    assert {"single", "fallback"} <= set(registry.strategies)
    assert pm.infos["openai"].distribution == "ferro-provider-openai"


def test_allow_list_and_block_list():
    only = make_plugin_manager(env={"FERRO_LOAD_PLUGINS": "echo,single"})
    assert sorted(build_registry(only).providers) == ["echo"]
    none = make_plugin_manager(env={"FERRO_LOAD_PLUGINS": ""})
    assert build_registry(none).providers == {}
    blocked = make_plugin_manager(env={"FERRO_DISABLE_PLUGINS": "openai"})
    assert "openai" not in build_registry(blocked).providers
    assert "echo" in build_registry(blocked).providers


def test_import_failure_names_entry_point_and_distribution(entry_points):
    entry_points(FakeEntryPoint("broken", error=ImportError("No module named 'missingdep'")))
    with pytest.raises(PluginLoadError) as info:
        make_plugin_manager(env={})
    message = info.value.message
    assert "plugin 'broken'" in message
    assert "ferro-provider-fake" in message
    assert "missingdep" in message
    assert "FERRO_DISABLE_PLUGINS=broken" in message


def test_misspelled_hook_is_an_error(entry_points):
    module = types.ModuleType("fake_plugin")

    @hookimpl
    def register_provider(register):  # missing the final "s"
        pass

    module.register_provider = register_provider
    entry_points(FakeEntryPoint("typo", module, dist="ferro-typo"))
    with pytest.raises(PluginLoadError, match=r"ferro-typo.*unknown hook 'register_provider'"):
        make_plugin_manager(env={})


def test_duplicate_name_names_both_distributions(entry_points):
    entry_points(FakeEntryPoint("one", provider_plugin("dup"), dist="ferro-provider-one"),
                 FakeEntryPoint("two", provider_plugin("dup"), dist="ferro-provider-two"))
    pm = make_plugin_manager(env={})
    with pytest.raises(ConfigError) as info:
        build_registry(pm)
    assert "provider name 'dup' is registered twice" in info.value.message
    assert "ferro-provider-one" in info.value.message
    assert "ferro-provider-two" in info.value.message


def test_tracing_logs_hook_calls(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ferro.plugins")
    pm = make_plugin_manager(env={"FERRO_TRACE_PLUGINS": "1"})
    build_registry(pm)
    assert "register_providers [hook]" in caplog.text, "pluggy's own tracing of the call"
    assert "finish register_providers" in caplog.text
