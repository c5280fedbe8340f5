"""``Gateway``: a config built into the parts a request needs, all resolved once into plain
attributes and lists: provider instances, targets with their breakers, the strategy, the
plugin chains, the cache, the accepted API keys.

A gateway is immutable once built. Reloading builds a new one (carrying breaker state over
for targets that did not change) and swaps it in; requests in flight finish on the one
they started with (see :class:`ferro.pipeline.Pipeline`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import aiohttp
import attrs
import orjson

from ferro.config import (
    STAGES,
    CacheConfig,
    Config,
    Duration,
    OptionError,
    ProviderSettings,
    RetryConfig,
    TargetConfig,
    TimeoutConfig,
    build_options,
)
from ferro.errors import (
    ConfigError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PluginError,
    RejectedError,
)
from ferro.http_client import HTTPClient
from ferro.operations import ChatChunk, OperationRequest
from ferro.pricing import Pricing
from ferro.provider import BaseProvider
from ferro.registry import Registry
from ferro.resilience import BreakerState, CircuitBreaker
from ferro.types import Cache, Exchange, Identity, Provider, RequestContext, Strategy, Target

__all__ = ["Gateway"]

log = logging.getLogger("ferro.gateway")

#: The older gateway's cache, configured as a plugin: read as the ``cache`` section.
LEGACY_CACHE_PLUGIN = "response-cache"

#: What a plugin instance may run in a request (an entry whose plugin has none of these
#: holds settings its plugin reads in ``configure_app``, such as ``webhooks``).
_STEPS = (*STAGES, "on_chunk")

#: How many (operation, model) answers of the route check are remembered.
_ELIGIBLE_CACHE = 1024

PluginStep = tuple[str, Callable[[RequestContext], Awaitable[Any]]]
ChunkStep = tuple[str, Callable[[RequestContext, ChatChunk], Awaitable[ChatChunk | None]]]


class Gateway:
    def __init__(self, config: Config, registry: Registry, env: Mapping[str, str],
                 session: aiohttp.ClientSession | None = None, *,
                 http: HTTPClient | None = None, previous: Gateway | None = None) -> None:
        """Build everything the config asks for, or raise a located ConfigError. Without a
        session and upstream client (the app has none before it starts), :meth:`bind`
        gives them later."""
        self.config = config
        self.registry = registry
        self.aliases = dict(config.aliases)
        self.providers: dict[str, Provider] = {}
        self.skipped: list[str] = []
        self._build_providers(env, session)
        if http is not None:
            self.bind(session, http)
        self.pricing = Pricing.with_overrides(config.pricing)
        self.targets = self._build_targets(previous)
        self.strategy = self._build_strategy()
        self.before: list[PluginStep] = []
        self.after: list[PluginStep] = []
        self.on_chunk: list[ChunkStep] = []
        self.on_error: list[PluginStep] = []
        #: ``before_attempt(ctx, target)`` of the plugins at ``before_request``, run before
        #: each upstream call (a limiter per provider).
        self.gates: list[Callable[[RequestContext, Target], Awaitable[None]]] = []
        #: Plugin instances' own ``exchange_completed(exchange)``, for requests on this config.
        self.listeners: list[Callable[[Exchange], Any]] = []
        #: The plugin instances built for this config (each closed with it, if it can be).
        self._instances: list[Any] = []
        self._build_plugins()
        self.cache: Cache | None = self._build_cache(previous)
        self._keys = {hashlib.sha256(k.encode()).digest(): i
                      for i, k in enumerate(config.server.api_keys) if k}
        self.cors = frozenset(config.server.cors_origins)
        self._eligible: dict[tuple[str, str], list[Target]] = {}
        self.in_flight = 0
        self._retired = False
        self._closing: asyncio.Future[None] | None = None
        self._closed = False
        self._cache_handed_on = False  # a newer config serves with this one's cache

    # --- building ---------------------------------------------------------------------------

    def _build_providers(self, env: Mapping[str, str],
                         session: aiohttp.ClientSession | None) -> None:
        config = self.config
        wanted: dict[str, ProviderSettings] = dict(config.providers)
        for where, target in self._target_configs():
            if target.virtual_key not in wanted:
                self.registry.lookup("providers", target.virtual_key, config.source.locate(where))
                wanted[target.virtual_key] = ProviderSettings(type=target.virtual_key)
        if not wanted:  # no config at all: every provider the environment configures
            for type_name, cls in self.registry.providers.items():
                if cls.configured_in(env):
                    wanted[type_name] = ProviderSettings(type=type_name)
            if not wanted and "echo" in self.registry.providers:
                wanted["echo"] = ProviderSettings(type="echo")
        for name, settings in wanted.items():
            type_name = settings.type or name
            cls = self.registry.lookup("providers", type_name,
                                       config.source.locate(("providers", name, "type")))
            resolved = cls.resolve_settings(name, attrs.evolve(settings, type=type_name), env,
                                            config.source)
            if resolved is None:
                where = config.source.locate(("providers", name))
                if name in config.providers:
                    raise ConfigError(f"{where}: provider {name!r} has no API key: set api_key "
                                      f"or the {cls.env_api_key} environment variable")
                self.skipped.append(name)
                log.warning("provider %s skipped: %s is not set", name, cls.env_api_key)
                continue
            self.providers[name] = cls(name, resolved, session)

    def _build_targets(self, previous: Gateway | None) -> list[Target]:
        config = self.config
        if not config.targets:
            if not self.providers:
                keys = sorted({cls.env_api_key for cls in self.registry.providers.values()
                               if cls.env_api_key})
                raise ConfigError(
                    "no provider is configured: set a provider's API key "
                    f"({', '.join(keys) or 'none installed'}), list providers in a config "
                    "file, or install ferro-provider-echo to serve without one")
            return [Target(name, p, kind=self._kind(name), pricing=self.pricing)
                    for name, p in self.providers.items()]
        first_retry = config.targets[0].retry or RetryConfig()
        targets = []
        for _where, tc in self._target_configs():
            provider = self.providers.get(tc.virtual_key)
            if provider is None:
                continue
            retry = tc.retry or first_retry
            breaker = None
            if tc.circuit_breaker:
                breaker = (_unchanged_breaker(previous, self.config, tc.virtual_key)
                           or CircuitBreaker(tc.circuit_breaker))
            targets.append(Target(
                name=tc.virtual_key,
                provider=provider,
                weight=tc.weight,
                retry=retry,
                timeout=tc.timeout or TimeoutConfig(),
                breaker=breaker,
                kind=self._kind(tc.virtual_key),
                pricing=self.pricing,
            ))
        if not targets:
            missing = ", ".join(self.skipped) or "?"
            raise ConfigError(f"{config.source.locate(('targets',))}: no target can be served: "
                              f"no API key is set for {missing}")
        return targets

    def _target_configs(self) -> list[tuple[tuple[Any, ...], TargetConfig]]:
        """The configured targets (each with its config path), then, as in the Go version,
        any provider a ``strategy.conditions`` rule names that ``targets`` does not list."""
        config = self.config
        listed = [(("targets", i, "virtual_key"), tc) for i, tc in enumerate(config.targets)]
        if not listed:
            return listed
        names = {tc.virtual_key for tc in config.targets}
        for i, rule in enumerate(config.strategy.conditions):
            if rule.target_key and rule.target_key not in names:
                names.add(rule.target_key)
                listed.append((("strategy", "conditions", i, "target_key"),
                               TargetConfig(virtual_key=rule.target_key)))
        return listed

    def _build_strategy(self) -> Strategy:
        config = self.config
        cls = self.registry.lookup("strategies", config.strategy.mode,
                                   config.source.locate(("strategy", "mode")))
        strategy_config = attrs.evolve(config.strategy, options=build_options(
            cls, config.strategy.options, config.source, ("strategy", "options")))
        try:
            return cls(strategy_config, self.targets)
        except OptionError as exc:
            raise config.error(exc.keys, exc.message) from None

    def _kind(self, name: str) -> str:
        settings = self.config.providers.get(name)
        return settings.type or name if settings is not None else name

    def _build_plugins(self) -> None:
        shared: dict[tuple[str, bytes], Any] = {}
        chains = {"before_request": self.before, "after_request": self.after,
                  "on_error": self.on_error}
        for i, entry in enumerate(self.config.plugins):
            if not entry.enabled or entry.name == LEGACY_CACHE_PLUGIN:  # that is the cache
                continue
            where = ("plugins", i)
            cls = self.registry.lookup("plugins", entry.name,
                                       self.config.source.locate((*where, "name")))
            key = (entry.name, orjson.dumps(entry.config, option=orjson.OPT_SORT_KEYS))
            instance = shared.get(key)
            if instance is None:
                options = build_options(cls, entry.config, self.config.source,
                                        (*where, "config"))
                try:
                    instance = cls(options)
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{self.config.source.locate((*where, 'config'))}: "
                                      f"plugin {entry.name!r}: {exc}") from None
                shared[key] = instance
                self._instances.append(instance)
                listener = getattr(instance, "exchange_completed", None)
                if listener is not None:
                    self.listeners.append(listener)
            if not any(hasattr(instance, step) for step in _STEPS):
                continue  # settings only, which its plugin reads when the app is configured
            method = getattr(instance, entry.stage, None)
            on_chunk = getattr(instance, "on_chunk", None) if entry.stage == "after_request" \
                else None
            if method is None and on_chunk is None:
                stages = [s for s in STAGES if hasattr(instance, s)]
                raise ConfigError(
                    f"{self.config.source.locate((*where, 'stage'))}: plugin {entry.name!r} "
                    f"does not run at {entry.stage} (it supports: {', '.join(stages) or 'none'})")
            if method is not None:
                chains[entry.stage].append((entry.name, method))
            gate = getattr(instance, "before_attempt", None) \
                if entry.stage == "before_request" else None
            if gate is not None and all(g.args[1] is not gate for g in self.gates):
                self.gates.append(functools.partial(_run_gate, entry.name, gate))
            if on_chunk is not None:
                self.on_chunk.append((entry.name, on_chunk))

    def _build_cache(self, previous: Gateway | None) -> Cache | None:
        """The configured cache; the previous config's own (with its entries) when the
        cache section did not change."""
        spec, where = self.cache_spec()
        if not spec.backend:
            return None
        if previous is not None and previous.cache is not None and \
                previous.cache_spec()[0] == spec:
            previous._cache_handed_on = True
            return previous.cache
        source = self.config.source
        cls = self.registry.lookup("caches", spec.backend, source.locate((*where, "backend")))
        return cls(build_options(cls, spec.options, source, (*where, "options")), spec.ttl)

    def cache_spec(self) -> tuple[CacheConfig, tuple[Any, ...]]:
        """The cache section, and where it is: ``cache``, or else an enabled ``plugins[]``
        entry named ``response-cache`` (the older gateway's cache: ``max_age`` seconds and
        ``max_entries``), which means the memory backend."""
        config = self.config
        if config.cache.backend:
            return config.cache, ("cache",)
        for i, entry in enumerate(config.plugins):
            if entry.name == LEGACY_CACHE_PLUGIN and entry.enabled:
                options = dict(entry.config)
                try:
                    ttl = Duration.parse(options.pop("max_age", 300))
                except (TypeError, ValueError) as exc:
                    raise config.error(("plugins", i, "config", "max_age"), str(exc)) from None
                return CacheConfig("memory", ttl, options), ("plugins", i, "config")
        return config.cache, ("cache",)

    # --- life cycle -------------------------------------------------------------------------

    def bind(self, session: aiohttp.ClientSession | None, http: HTTPClient) -> None:
        """Give the providers the app's aiohttp session and upstream client (for a
        gateway built before the app started them)."""
        for provider in self.providers.values():
            provider.session = session  # type: ignore[attr-defined]
            if isinstance(provider, BaseProvider):
                provider.http = http

    def watch_breakers(self, changed: Callable[[str, BreakerState, BreakerState], None]) -> None:
        """Have every target's breaker report its changes as ``changed(target, old, new)``."""
        for target in self.targets:
            if target.breaker is not None:
                target.breaker.on_change = functools.partial(changed, target.name)

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self._retired and self.in_flight == 0:
            self._close_soon()

    def retire(self) -> None:
        """Replaced by a newer config: close once the last request on it has finished."""
        self._retired = True
        if self.in_flight == 0:
            self._close_soon()

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.aclose())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for provider in self.providers.values():
            await provider.aclose()
        for instance in self._instances:
            close = getattr(instance, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing plugin %r failed", instance)
        close_cache = getattr(self.cache, "aclose", None)
        if close_cache is not None and not self._cache_handed_on:
            await close_cache()

    # --- the steps a request takes (called by the pipeline) ---------------------------------

    @property
    def requires_key(self) -> bool:
        """Whether the config lists API keys (``server.api_keys``)."""
        return bool(self._keys)

    def config_identity(self, token: str) -> Identity | None:
        """The caller whose key, listed in ``server.api_keys``, is ``token``; else None."""
        if not self._keys:
            return None
        # bytes that are not UTF-8 reach us as surrogates: kept, they match no key (a 401)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        index = self._keys.get(digest)  # looked up by hash: no timing reveals the key
        if index is None:
            return None
        return Identity(key_id="cfg-" + digest[:6].hex(), name=f"server.api_keys[{index}]",
                        scopes=frozenset({"inference"}))

    def resolve_model(self, request: OperationRequest) -> None:
        alias = self.aliases.get(request.model)
        if alias is not None:
            request.body["model"] = alias

    def check_route(self, ctx: RequestContext) -> None:
        """Before routing: the targets that serve the request's operation and model (kept on
        ``ctx`` for the strategy), or a 400 when there are none: ``model_not_found`` when no
        target serves the model, ``unsupported_operation`` when those that do lack the
        operation. Answers are remembered per (operation, model), a bounded few."""
        model, operation = ctx.request.model, ctx.request.operation
        key = (operation.name, model)
        eligible = self._eligible.get(key)
        if eligible is None:
            eligible = [t for t in self.targets if t.serves(operation, model)]
            if len(self._eligible) >= _ELIGIBLE_CACHE:
                self._eligible.clear()
            self._eligible[key] = eligible
        if eligible:
            ctx.remember_eligible(self.targets, eligible)
            return
        serving = [t for t in self.targets if not model or t.provider.supports_model(model)]
        if not serving:
            raise ModelNotFoundError(f"no provider supports model: {model}", param="model")
        names = ", ".join(t.name for t in serving)
        which = f"provider {names} does" if len(serving) == 1 else f"providers {names} do"
        for_model = f" (model {model})" if model else ""
        raise InvalidRequestError(f"{which} not serve {operation.name}{for_model}",
                                  code="unsupported_operation", param="model")

    async def run_before(self, ctx: RequestContext) -> None:
        for name, step in self.before:
            await _run_plugin(name, step, ctx)
            if ctx.response is not None:
                return

    async def run_after(self, ctx: RequestContext) -> None:
        for name, step in self.after:
            await _run_plugin(name, step, ctx)

    async def run_on_error(self, ctx: RequestContext) -> None:
        for name, step in self.on_error:
            try:
                await _run_plugin(name, step, ctx)
            except GatewayError as exc:
                log.error("on_error plugin %s failed: %s", name, exc.message)

    async def run_on_chunk(self, ctx: RequestContext, chunk: ChatChunk) -> ChatChunk | None:
        for name, step in self.on_chunk:
            try:
                result = await step(ctx, chunk)
            except Exception as exc:
                _raise_plugin_failure(name, exc)
            if result is None:
                return None
            chunk = result
        return chunk


def _unchanged_breaker(previous: Gateway | None, config: Config,
                       name: str) -> CircuitBreaker | None:
    """The previous config's breaker for target ``name`` when neither the target nor its
    provider changed."""
    if previous is None:
        return None
    old = next((t for t in previous.targets if t.name == name), None)
    if old is None or old.breaker is None:
        return None
    new_tc = next(tc for tc in config.targets if tc.virtual_key == name)
    old_tc = next((tc for tc in previous.config.targets if tc.virtual_key == name), None)
    if old_tc != new_tc or previous.config.providers.get(name) != config.providers.get(name):
        return None
    return old.breaker


async def _run_plugin(name: str, step: Callable[[RequestContext], Awaitable[Any]],
                     ctx: RequestContext) -> None:
    try:
        await step(ctx)
    except Exception as exc:
        _raise_plugin_failure(name, exc)


async def _run_gate(name: str, gate: Callable[[RequestContext, Target], Awaitable[Any]],
                    ctx: RequestContext, target: Target) -> None:
    try:
        await gate(ctx, target)
    except Exception as exc:
        _raise_plugin_failure(name, exc)


def _raise_plugin_failure(name: str, exc: Exception) -> NoReturn:
    """A rejection names its plugin; any other exception is a bug, logged and answered as
    a clean 500 ``plugin_error``."""
    if isinstance(exc, RejectedError):
        if not exc.message.startswith(f"request rejected by {name}"):
            exc.message = f"request rejected by {name}: {exc.message}"
        raise exc
    if isinstance(exc, GatewayError):
        raise exc
    log.exception("plugin %s raised %s", name, type(exc).__name__, exc_info=exc)
    raise PluginError(f"plugin {name} failed; the error has been logged") from exc
