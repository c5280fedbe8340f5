"""Typed registries, filled once by the ``register_*`` hooks of every plugin. Each hook is
called through pluggy, one plugin at a time (so a duplicate name can name both owners),
which also means pluggy's argument matching and ``FERRO_TRACE_PLUGINS`` tracing apply."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ferro.errors import ConfigError
from ferro.plugins import FerroPluginManager

__all__ = ["Registry", "build_registry"]

if TYPE_CHECKING:
    from ferro.types import Cache, Plugin, Provider, Strategy

log = logging.getLogger("ferro.plugins")

KINDS = ("providers", "strategies", "plugins", "caches", "storage")
SINGULAR = {
    "providers": "provider",
    "strategies": "strategy",
    "plugins": "plugin",
    "caches": "cache",
    "storage": "storage backend",
}


@attrs.define
class Registry:
    """Name -> class for each kind, plus which plugin registered each name."""

    providers: dict[str, type[Provider]] = attrs.Factory(dict)
    strategies: dict[str, type[Strategy]] = attrs.Factory(dict)
    plugins: dict[str, type[Plugin]] = attrs.Factory(dict)
    caches: dict[str, type[Cache]] = attrs.Factory(dict)
    #: Storage backends: their protocol comes with the storage hookspec's first backend.
    storage: dict[str, type] = attrs.Factory(dict)
    #: (kind, name) -> plugin name that registered it
    owners: dict[tuple[str, str], str] = attrs.Factory(dict)

    def registered_by(self, plugin_name: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for (kind, name), owner in self.owners.items():
            if owner == plugin_name:
                out.setdefault(kind, []).append(name)
        return out

    def lookup(self, kind: str, name: str, where: str) -> Any:
        table: dict[str, Any] = getattr(self, kind)
        try:
            return table[name]
        except KeyError:
            installed = ", ".join(sorted(table)) or "none"
            raise ConfigError(
                f"{where}: unknown {SINGULAR[kind]} {name!r} (installed: {installed}). "
                f"Install the package that provides it, or check the spelling."
            ) from None


def build_registry(pm: FerroPluginManager) -> Registry:
    registry = Registry()
    plugins = pm.get_plugins()
    for kind in KINDS:
        hook = f"register_{kind}"
        for impl in getattr(pm.hook, hook).get_hookimpls():
            only = pm.subset_hook_caller(hook, [p for p in plugins if p is not impl.plugin])
            only(register=_registrar(pm, registry, kind, impl.plugin_name))
    return registry


def _registrar(
    pm: FerroPluginManager, registry: Registry, kind: str, owner: str
) -> Callable[[str, type], None]:
    table: dict[str, Any] = getattr(registry, kind)

    def register(name: str, cls: type) -> None:
        previous = registry.owners.get((kind, name))
        if previous is not None and previous != owner:
            raise ConfigError(
                f"{SINGULAR[kind]} name {name!r} is registered twice: "
                f"by {pm.distribution_of(previous)} and by {pm.distribution_of(owner)}. "
                f"Uninstall one, or disable it with FERRO_DISABLE_PLUGINS"
            )
        table[name] = cls
        registry.owners[(kind, name)] = owner

    return register
