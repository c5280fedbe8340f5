"""``Gateway``: a config applied. It holds the provider instances, the targets, the strategy
and the plugin chains, all resolved once into plain lists, and runs one request through
them: plugins, cache short-circuit, strategy, provider call (through breaker), plugins.

Streams and non-streams take the same path; a stream is "called" when its first chunk
arrives, so the strategy can retry or fall back until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, cast

import aiohttp
import attrs
import orjson

from ferro.config import STAGES, Config, ProviderSettings, RetryConfig, structure
from ferro.errors import (
    CircuitOpenError,
    ConfigError,
    GatewayError,
    ModelNotFoundError,
    PluginError,
    RejectedError,
    UpstreamError,
    transport_error,
)
from ferro.registry import Registry
from ferro.resilience import CircuitBreaker
from ferro.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Provider,
    RawFrames,
    RequestContext,
    Target,
)

__all__ = ["ChunkStream", "Gateway"]

log = logging.getLogger("ferro.gateway")

PluginStep = tuple[str, Callable[[RequestContext], Awaitable[Any]]]


@attrs.define(eq=False)
class ChunkStream:
    """A stream whose first chunk has arrived. Read ``first``, then iterate ``rest`` (None
    when there is no more); then call :meth:`close` with the error that ended it, if any."""

    target: Target | None
    first: ChatChunk | RawFrames
    rest: AsyncGenerator[ChatChunk | RawFrames, None] | None = None
    _done: Callable[[GatewayError | None], None] | None = None

    def error_from(self, exc: BaseException) -> GatewayError:
        """The GatewayError for what interrupted reading the stream."""
        if isinstance(exc, GatewayError):
            return exc
        return transport_error(self.target.name if self.target else "upstream", exc)

    async def close(self, error: GatewayError | None) -> None:
        close = getattr(self.rest, "aclose", None)
        if close is not None:
            await close()  # release the upstream connection at once
        if self._done is not None:
            self._done(error)


class Gateway:
    def __init__(self, config: Config, registry: Registry, env: Mapping[str, str]) -> None:
        """Build everything the config asks for; providers get their HTTP session when the
        app starts (``create_app``'s cleanup context)."""
        self.config = config
        self.registry = registry
        self.aliases = dict(config.aliases)
        self.providers: dict[str, Provider] = {}
        self.skipped: list[str] = []
        self._build_providers(env)
        self.targets = self._build_targets()
        strategy_cls = registry.lookup("strategies", config.strategy.mode,
                                       config.source.locate(("strategy", "mode")))
        self.strategy = strategy_cls(config.strategy, self.targets)
        self.before: list[PluginStep] = []
        self.after: list[PluginStep] = []
        self.on_error: list[PluginStep] = []
        self._build_plugins()

    # --- building ---------------------------------------------------------------------------

    def _build_providers(self, env: Mapping[str, str]) -> None:
        config = self.config
        wanted: dict[str, ProviderSettings] = dict(config.providers)
        for i, target in enumerate(config.targets):
            if target.virtual_key not in wanted:
                self.registry.lookup("providers", target.virtual_key,
                                     config.source.locate(("targets", i, "virtual_key")))
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
            self.providers[name] = cls(name, resolved, None)

    def _build_targets(self) -> list[Target]:
        config = self.config
        if not config.targets:
            if not self.providers:
                keys = sorted({cls.env_api_key for cls in self.registry.providers.values()
                               if cls.env_api_key})
                raise ConfigError(
                    "no provider is configured: set a provider's API key "
                    f"({', '.join(keys) or 'none installed'}), list providers in a config "
                    "file, or install ferro-provider-echo to serve without one")
            return [Target(name, p) for name, p in self.providers.items()]
        first_retry = config.targets[0].retry or RetryConfig()
        targets = []
        for tc in config.targets:
            provider = self.providers.get(tc.virtual_key)
            if provider is None:
                continue
            retry = tc.retry or first_retry
            targets.append(Target(
                name=tc.virtual_key,
                provider=provider,
                weight=tc.weight,
                attempts=retry.attempts,
                backoff=retry.backoff,
                max_backoff=retry.max_backoff,
                breaker=CircuitBreaker(tc.circuit_breaker) if tc.circuit_breaker else None,
            ))
        if not targets:
            missing = ", ".join(self.skipped) or "?"
            raise ConfigError(f"{config.source.locate(('targets',))}: no target can be served: "
                              f"no API key is set for {missing}")
        return targets

    def _build_plugins(self) -> None:
        shared: dict[tuple[str, bytes], Any] = {}
        chains = {"before_request": self.before, "after_request": self.after,
                  "on_error": self.on_error}
        for i, entry in enumerate(self.config.plugins):
            if not entry.enabled:
                continue
            where = ("plugins", i)
            cls = self.registry.lookup("plugins", entry.name,
                                       self.config.source.locate((*where, "name")))
            key = (entry.name, orjson.dumps(entry.config, option=orjson.OPT_SORT_KEYS))
            instance = shared.get(key)
            if instance is None:
                options: Any = entry.config
                config_cls = getattr(cls, "Config", None)
                if config_cls is not None:
                    options = structure(entry.config, config_cls, self.config.source,
                                        (*where, "config"))
                try:
                    instance = cls(options)
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{self.config.source.locate((*where, 'config'))}: "
                                      f"plugin {entry.name!r}: {exc}") from None
                shared[key] = instance
            method = getattr(instance, entry.stage, None)
            if method is None:
                stages = [s for s in STAGES if hasattr(instance, s)]
                raise ConfigError(
                    f"{self.config.source.locate((*where, 'stage'))}: plugin {entry.name!r} "
                    f"does not run at {entry.stage} (it supports: {', '.join(stages) or 'none'})")
            chains[entry.stage].append((entry.name, method))

    async def aclose(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    # --- serving ----------------------------------------------------------------------------

    def resolve_model(self, request: ChatRequest) -> None:
        model = request.body["model"]
        alias = self.aliases.get(model)
        if alias is not None:
            request.body["model"] = alias

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

    def check_model(self, model: str) -> None:
        for target in self.targets:
            if target.provider.supports_model(model):
                return
        raise ModelNotFoundError(f"no provider supports model: {model}", param="model")

    async def complete(self, ctx: RequestContext) -> ChatResponse | ChunkStream:
        """Run ``before_request`` plugins, then the strategy; returns a response, or a stream
        whose first chunk has arrived. ``after_request``/``on_error`` are the caller's, once
        the outcome is known (for a stream: once it has ended)."""
        await self.run_before(ctx)
        if ctx.response is not None:
            if ctx.request.stream:
                return ChunkStream(None, *_chunks_of(ctx.response, ctx.request.include_usage))
            return ctx.response
        self.check_model(ctx.request.model)
        request = ctx.request
        if request.stream:
            return await self.strategy.route(request, lambda t: _call_stream(t, request))
        return await self.strategy.route(request, lambda t: _call_chat(t, request))


def _admit(target: Target) -> None:
    if target.breaker is not None and not target.breaker.allow():
        raise CircuitOpenError(f"circuit breaker open for {target.name}")


def _failed(target: Target, exc: BaseException) -> BaseException:
    """Record a failed call on the target's breaker; the exception to raise for it."""
    _record(target.breaker, exc)
    return _as_gateway_error(target.name, exc)


async def _call_chat(target: Target, request: ChatRequest) -> ChatResponse:
    _admit(target)
    try:
        response = await target.provider.chat(request)
    except BaseException as exc:
        err = _failed(target, exc)
        if err is exc:
            raise
        raise err from exc
    _record(target.breaker, None)
    return response


async def _call_stream(target: Target, request: ChatRequest) -> ChunkStream:
    _admit(target)
    agen = cast(AsyncGenerator[ChatChunk | RawFrames, None],
                target.provider.stream(request).__aiter__())
    try:
        first = await agen.__anext__()
    except StopAsyncIteration:
        exc = UpstreamError(f"{target.name} sent an empty stream", provider=target.name,
                            code="stream_truncated", retryable=True)
        raise _failed(target, exc) from None
    except BaseException as exc:
        err = _failed(target, exc)
        if err is exc:
            raise
        raise err from exc
    return ChunkStream(target, first, agen, lambda error: _record(target.breaker, error))


def _record(breaker: CircuitBreaker | None, exc: BaseException | None) -> None:
    if breaker is None:
        return
    if exc is None:
        breaker.record_success()
    elif isinstance(exc, GatewayError) and not exc.retryable and exc.status < 500:
        breaker.record_success()  # the upstream answered; the request was at fault
    elif isinstance(exc, GatewayError | asyncio.TimeoutError | aiohttp.ClientError | OSError):
        breaker.record_failure()
    else:
        breaker.release()


def _as_gateway_error(name: str, exc: BaseException) -> BaseException:
    if isinstance(exc, GatewayError | asyncio.CancelledError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        return transport_error(name, exc)
    log.exception("provider %s raised %s", name, type(exc).__name__, exc_info=exc)
    return UpstreamError(f"provider {name} failed: {type(exc).__name__}: {exc}", provider=name,
                         status=502, code="provider_error", retryable=True)


async def _run_plugin(name: str, step: Callable[[RequestContext], Awaitable[Any]],
                      ctx: RequestContext) -> None:
    try:
        await step(ctx)
    except RejectedError as exc:
        if not exc.message.startswith(f"request rejected by {name}"):
            exc.message = f"request rejected by {name}: {exc.message}"
        raise
    except GatewayError:
        raise
    except Exception as exc:
        log.exception("plugin %s raised %s", name, type(exc).__name__)
        raise PluginError(f"plugin {name} failed; the error has been logged") from exc


def _chunks_of(response: ChatResponse,
               include_usage: bool) -> tuple[ChatChunk, AsyncGenerator[ChatChunk, None]]:
    """Replay a complete response (a cache hit) as a stream."""
    body = response.body
    base = {"id": body.get("id", ""), "object": "chat.completion.chunk",
            "created": body.get("created", 0), "model": body.get("model", "")}
    chunks = []
    for choice in body.get("choices", []):
        message = dict(choice.get("message") or {})
        delta = {k: v for k, v in message.items() if v is not None}
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(tool_calls)]
        chunks.append(ChatChunk({**base, "choices": [
            {"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]}))
        chunks.append(ChatChunk({**base, "choices": [
            {"index": choice.get("index", 0), "delta": {},
             "finish_reason": choice.get("finish_reason", "stop")}]}))
    if include_usage and body.get("usage"):
        chunks.append(ChatChunk({**base, "choices": [], "usage": body["usage"]}))

    async def rest() -> AsyncGenerator[ChatChunk, None]:
        for chunk in chunks[1:]:
            yield chunk

    return chunks[0], rest()
