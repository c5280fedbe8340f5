"""Typed registries, filled once by the ``register_*`` hooks of every plugin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs

from ferro.errors import ConfigError
from ferro.plugins import FerroPluginManager

__all__ = ["Registry", "build_registry"]

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

    providers: dict[str, Any] = attrs.Factory(dict)
    strategies: dict[str, Any] = attrs.Factory(dict)
    plugins: dict[str, Any] = attrs.Factory(dict)
    caches: dict[str, Any] = attrs.Factory(dict)
    storage: dict[str, Any] = attrs.Factory(dict)
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
    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}")
        for impl in caller.get_hookimpls():
            impl.function(register=_registrar(pm, registry, kind, impl.plugin_name))
            if pm.tracing:
                names = [n for (k, n), owner in registry.owners.items()
                         if k == kind and owner == impl.plugin_name]
                log.info("hook trace: register_%s of %s registered %s", kind,
                         impl.plugin_name, names)
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
