"""The plugin manager: entry-point discovery, allow- and block-lists, tracing.

``FERRO_LOAD_PLUGINS=a,b`` loads only those entry points (an empty value loads none);
``FERRO_DISABLE_PLUGINS=a,b`` skips those; ``FERRO_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from ferro import hookspecs
from ferro.errors import ConfigError

__all__ = ["PluginInfo", "PluginLoadError", "make_plugin_manager"]

log = logging.getLogger("ferro.plugins")

ENTRY_POINT_GROUP = "ferro"


class PluginLoadError(ConfigError):
    """A plugin could not be loaded; the message names the entry point and distribution."""


@attrs.define
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None


class FerroPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__("ferro")
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def register_plugin(
        self, plugin: Any, name: str, distribution: str | None = None, version: str | None = None
    ) -> None:
        self.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, distribution, version)

    def distribution_of(self, plugin_name: str) -> str:
        info = self.infos.get(plugin_name)
        if info is None or not info.distribution:
            return f"plugin {plugin_name!r}"
        return f"{info.distribution} (plugin {plugin_name!r})"


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def make_plugin_manager(
    *, load_entrypoints: bool = True, env: Mapping[str, str] | None = None
) -> FerroPluginManager:
    """A new plugin manager with every installed ``ferro`` entry point registered (subject
    to the allow- and block-lists). One per app; there is no module-level manager."""
    env = os.environ if env is None else env
    pm = FerroPluginManager()
    if load_entrypoints:
        allow = _names(env.get("FERRO_LOAD_PLUGINS"))
        block = _names(env.get("FERRO_DISABLE_PLUGINS")) or set()
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen or (allow is not None and ep.name not in allow) or ep.name in block:
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} (entry point {ep.value!r} from distribution "
                    f"{dist or 'unknown'}) failed to import: {type(exc).__name__}: {exc}. "
                    f"Fix or uninstall it, or skip it with FERRO_DISABLE_PLUGINS={ep.name}"
                ) from exc
            pm.register_plugin(plugin, ep.name, dist, version)
    check_pending(pm)
    if env.get("FERRO_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.info("hook trace: %s", msg.rstrip()))
        pm.enable_tracing()
    return pm


def check_pending(pm: FerroPluginManager) -> None:
    """Fail on a hook implementation that matches no hookspec (a misspelled hook)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginLoadError(f"{pm.distribution_of(name)}: {exc}") from None
