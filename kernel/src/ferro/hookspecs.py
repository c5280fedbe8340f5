"""The plugin contract: every hook a Ferro plugin can implement.

Hooks are synchronous registration and lookup calls, made once when the gateway is built;
all I/O lives in ``async`` methods of the objects they register. A hook implementation may
accept fewer arguments than its spec (pluggy's opt-in arguments).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from ferro.config import Config
    from ferro.resilience import BreakerState
    from ferro.types import Exchange

hookspec = pluggy.HookspecMarker("ferro")
hookimpl = pluggy.HookimplMarker("ferro")

# --- registration: called once per plugin manager -------------------------------------------


@hookspec
def register_providers(register: Callable[[str, type], None]) -> None:
    """Register provider classes by type name: ``register("openai", OpenAIProvider)``.

    The class implements :class:`ferro.Provider`. It is instantiated once per configured
    provider of that type as ``cls(name, settings, session)``. The type name is what a
    config's ``providers.<name>.type`` (or a target's ``virtual_key``) refers to.
    """


@hookspec
def register_strategies(register: Callable[[str, type], None]) -> None:
    """Register routing strategies by mode name: ``register("fallback", FallbackStrategy)``.

    The class implements :class:`ferro.Strategy`; it is built as ``cls(config, targets)``
    from the config's ``strategy`` section whenever a config is applied.
    """


@hookspec
def register_plugins(register: Callable[[str, type], None]) -> None:
    """Register request-lifecycle plugins by name: ``register("word-filter", WordFilter)``.

    The class implements :class:`ferro.Plugin`: built as ``cls(config)`` for each enabled
    ``plugins[]`` entry with that name, it runs at the entry's ``stage``.
    """


@hookspec
def register_caches(register: Callable[[str, type], None]) -> None:
    """Register response-cache backends by name: ``register("memory", MemoryCache)``."""


@hookspec
def register_storage(register: Callable[[str, type], None]) -> None:
    """Register storage backends by name: ``register("sqlite", SQLiteStorage)``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or command groups to the ``ferrogw`` CLI."""


# --- application -----------------------------------------------------------------------------


@hookspec
def configure_app(app: web.Application, config: Config) -> None:
    """Add routes (``/metrics``, ``/dashboard``), middlewares, or startup and cleanup steps
    (``app.cleanup_ctx``) to a freshly created gateway app. Called once per app. The routes
    added answer errors in the schema and, when keys are configured, require one, unless
    marked public with :func:`ferro.public_route`. The response a route's handler returns
    gets the request id, ``Server`` and CORS headers (one it prepares itself, a stream, has
    been sent before it returns: it sets them itself)."""


@hookspec(firstresult=True)
def config_file_reloaded(app: web.Application, config: Config) -> bool | None:
    """SIGHUP re-read the config file: ``config`` (checked as at start-up). Return True to
    take it over: the plugin serves it (with :func:`ferro.reload`) or keeps the config it
    set in force. When no plugin takes it, the kernel serves it."""


@hookspec
def exchange_completed(exchange: Exchange) -> Awaitable[Any] | None:
    """A request finished (answered, failed or rejected) and its reply has been sent.

    For metrics, logs, request-log rows and webhooks. Listeners are resolved once when the
    app is built, and called after the response is written, never before. Keep the call
    cheap: count, or enqueue for a batch writer. A returned awaitable is run as a background
    task; the gateway bounds how many run at once and counts the ones it has to drop.
    """


@hookspec
def breaker_state_changed(provider: str, old: BreakerState, new: BreakerState) -> None:
    """Target ``provider``'s circuit breaker went from ``old`` to ``new`` (closed -> open,
    open -> half-open, half-open -> closed or open). Called where it happens, on the event
    loop, in the middle of a request: keep it cheap (set a gauge, enqueue a webhook)."""
