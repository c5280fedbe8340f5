"""The contracts plugins implement (Provider, Strategy, Plugin) and the values the pipeline
hands them: targets, the caller's identity, the request context and the completed exchange.
The operation types (requests, answers, chunks) are in :mod:`ferro.operations`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs

from ferro.config import RetryConfig, TimeoutConfig
from ferro.operations import Answer, Operation, OperationRequest, Usage

if TYPE_CHECKING:
    import aiohttp

    from ferro.caching import CacheEntry
    from ferro.config import ConfigSource, ProviderSettings, StrategyConfig
    from ferro.errors import GatewayError
    from ferro.pricing import Price, Pricing
    from ferro.resilience import CircuitBreaker
    from ferro.tracing import TraceContext

__all__ = [
    "Attempt",
    "Cache",
    "Call",
    "Exchange",
    "Identity",
    "ModelInfo",
    "Plugin",
    "Provider",
    "RequestContext",
    "Strategy",
    "Target",
]

T = TypeVar("T")


@attrs.define(slots=True)
class ModelInfo:
    id: str
    owned_by: str
    created: int = 0
    #: The operations this model serves, where the provider reports them (None: unknown).
    operations: tuple[str, ...] | None = None

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "object": "model", "created": self.created,
                               "owned_by": self.owned_by}
        if self.operations is not None:
            out["operations"] = list(self.operations)
        return out


@runtime_checkable
class Provider(Protocol):
    """An LLM provider, registered by type name through ``register_providers``. This is
    everything the kernel calls; :class:`ferro.BaseProvider` implements all of it but the
    operation methods.

    Built once per configured provider, each time a config is applied, as ``cls(name,
    settings, session)``: the instance name from the config, its resolved
    :class:`ProviderSettings` (see :meth:`resolve_settings`), and the gateway's one shared
    ``aiohttp.ClientSession`` (None when built before the app has started; the kernel then
    sets ``session`` once it has one).

    ``operations`` names what it serves (``{"chat", "embeddings"}``); for each, the kernel
    calls the methods its :class:`~ferro.operations.Operation` names: ``chat`` / ``stream``,
    ``embeddings``, ``completions`` / ``stream_completions``. A method raises a
    :class:`~ferro.errors.GatewayError` on failure, and a stream method raises too when the
    upstream stream ends without its terminal event.
    """

    name: str
    session: aiohttp.ClientSession | None
    operations: frozenset[str]
    #: Env var holding the API key (None when the provider needs none).
    env_api_key: ClassVar[str | None]

    def __init__(self, name: str, settings: ProviderSettings,
                 session: aiohttp.ClientSession | None) -> None: ...

    @classmethod
    def resolve_settings(cls, name: str, settings: ProviderSettings, env: Mapping[str, str],
                         source: ConfigSource) -> ProviderSettings | None:
        """The settings with what the environment supplies filled in (key, base URL, typed
        options); None when the provider cannot be configured (no API key)."""
        ...

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        """Whether the environment alone configures it (for a start without a config)."""
        ...

    def supports_model(self, model: str) -> bool: ...

    def upstream_model(self, model: str) -> str:
        """The model name sent upstream for a gateway model name (its ``model_map``)."""
        ...

    def static_models(self) -> list[ModelInfo]:
        """The configured or default models, without asking the upstream."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """The models this provider serves (discovered where it can, cached)."""
        ...

    async def check_health(self) -> None:
        """A cheap deep check; raise a :class:`GatewayError` when unhealthy."""
        ...

    async def aclose(self) -> None:
        """Stop background work; called when the config it belongs to is retired."""
        ...

    # The operation methods, present for the operations the provider serves:
    #   async def chat(self, request: ChatRequest) -> ChatResponse
    #   def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk | RawFrames]
    #   async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse
    #   async def completions(self, request: CompletionsRequest) -> CompletionsResponse
    #   def stream_completions(self, request: CompletionsRequest)
    #       -> AsyncIterator[ChatChunk | RawFrames]


@attrs.define(slots=True, eq=False)
class Target:
    """One configured routing target: a provider instance and its per-target policy (retry
    policy, time limits, circuit breaker), and the price table to price its models with."""

    name: str
    provider: Provider
    weight: float = 1.0
    retry: RetryConfig = attrs.Factory(RetryConfig)
    timeout: TimeoutConfig = attrs.Factory(TimeoutConfig)
    breaker: CircuitBreaker | None = None
    #: The provider's type (``openai`` for a provider named ``openai-eu``), for pricing.
    kind: str = ""
    pricing: Pricing | None = None

    def serves(self, operation: Operation, model: str) -> bool:
        """Whether it serves the operation for the model (any target serving the operation
        does when the request names no model)."""
        return operation.name in self.provider.operations and (
            not model or self.provider.supports_model(model))

    def upstream_model(self, model: str) -> str:
        """The model this target asks its upstream for when a request names ``model``."""
        return self.provider.upstream_model(model)

    def price(self, model: str) -> Price | None:
        """What this target charges for ``model`` (None: no price is known)."""
        if self.pricing is None:
            return None
        return self.pricing.find(self.upstream_model(model), self.name, self.kind)


#: What a strategy calls to try one target: the kernel's attempt helper, which applies the
#: target's breaker, retry policy and timeout, and returns the result or raises the final
#: :class:`GatewayError` (see :func:`ferro.can_fall_back` to decide whether to move on).
Attempt = Callable[[Target], Awaitable[T]]


@attrs.frozen
class Identity:
    """Who is calling: an API key's id, name and scopes; never the secret itself."""

    key_id: str
    name: str = ""
    scopes: frozenset[str] = frozenset()
    #: Tags and limits a key store attaches to the key (models allowed, budget, ...).
    attributes: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define(slots=True, eq=False)
class RequestContext:
    """One request on its way through the pipeline: what strategies and request-lifecycle
    plugins see.

    ``before_request`` plugins may edit ``request.body``, set ``response`` to answer without
    calling a provider (a cache hit), or raise :class:`~ferro.errors.RejectedError`.
    ``after_request`` plugins see ``response`` (for a stream, the assembled answer);
    ``on_error`` plugins see ``error``. ``metadata`` is theirs to share, and reaches the
    completed exchange; ``state`` holds their private per-request state, and does not.
    ``headers`` holds the request headers plugins and strategies may route on (``X-*``,
    ``User-Agent``, ``OpenAI-*``, ``Anthropic-*``), lower-cased; never ``Authorization`` or
    any other credential.
    """

    request: OperationRequest
    request_id: str
    identity: Identity | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    response: Answer | None = None
    error: GatewayError | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = attrs.Factory(dict)
    #: Names of the targets tried, in order, and how many calls were made in all.
    tried: list[str] = attrs.Factory(list)
    attempts: int = 0
    #: Each upstream call, as the exchange reports it.
    calls: list[Call] = attrs.Factory(list)
    #: The target that answered (or failed last).
    provider: str = ""
    #: Upstream response headers to relay to the client (rate limits, its request id).
    upstream_headers: dict[str, str] = attrs.Factory(dict)
    #: Headers strategies and plugins add to the reply (an A/B arm, a cache verdict).
    reply_headers: dict[str, str] = attrs.Factory(dict)
    #: The ``loop.time()`` by which the whole request must be answered (``X-Ferro-Timeout``),
    #: or None.
    deadline: float | None = None
    #: The target that answered, or failed last (None before any call).
    target: Target | None = None
    #: The ``time.perf_counter()`` of the request's arrival (calls are timed from it).
    arrived: float = 0.0
    #: The W3C trace the request belongs to, and its span in the gateway.
    trace: TraceContext | None = None
    #: The address the request came from (the TCP peer; a rate limiter that trusts
    #: proxies reads ``X-Forwarded-For`` from ``headers`` itself).
    client_ip: str = ""
    #: Plugins' private per-request state (a guardrail's carry-over window between stream
    #: chunks), keyed by whatever the plugin chooses; never reported.
    state: dict[Any, Any] = attrs.Factory(dict)
    _eligible: tuple[list[Target], str, list[Target]] | None = attrs.field(
        default=None, init=False, repr=False)

    @property
    def operation(self) -> Operation:
        return self.request.operation

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def user(self) -> str | None:
        return self.request.user

    @property
    def stream(self) -> bool:
        return self.request.stream

    def eligible(self, targets: list[Target]) -> list[Target]:
        """The targets that serve this request's operation and model, in their order (a
        strategy that changes ``request.body["model"]`` gets the answer for the new one)."""
        known = self._eligible
        operation, model = self.request.operation, self.request.model
        if known is not None and known[0] is targets and known[1] == model:
            return list(known[2])
        return [t for t in targets if t.serves(operation, model)]

    def remember_eligible(self, targets: list[Target], eligible: list[Target]) -> None:
        """What :meth:`eligible` answers for ``targets`` (the pipeline's route check)."""
        self._eligible = (targets, self.request.model, eligible)

    def exchange(self, status: int, error: GatewayError | None, usage: Usage | None,
                 ttfb: float | None, started: float, t0: float,
                 ended: float | None = None) -> Exchange:
        """The completed exchange of this request (``t0`` and ``ended``: its
        ``perf_counter`` start and end, by default now)."""
        if usage is None and self.response is not None:
            usage = self.response.usage
        usage = usage or Usage()
        target = self.target
        model = self.request.body.get("model", "")
        cost: float | None = None
        if self.metadata.get("cache") == "hit":
            cost = 0.0  # answered from the cache: no upstream was paid
        elif target is not None:
            price = target.price(model)
            cost = None if price is None else price.cost(self.request.operation.name, usage)
        return Exchange(
            request_id=self.request_id,
            operation=self.request.operation.name,
            model=model,
            provider=self.provider or getattr(error, "provider", "") or "",
            stream=self.request.stream,
            status=status,
            started=started,
            duration=(time.perf_counter() if ended is None else ended) - t0,
            ttfb=ttfb,
            usage=usage,
            cost=cost,
            upstream_model=target.upstream_model(model) if target is not None else "",
            error=error,
            identity=self.identity,
            user=self.request.user,
            client_ip=self.client_ip,
            trace=self.trace,
            targets=self.tried,
            attempts=self.attempts,
            calls=self.calls,
            metadata=self.metadata,
        )


class Strategy(Protocol):
    """A routing strategy, registered by mode name through ``register_strategies``.

    Built once per config as ``cls(config, targets)`` (``config.options`` is an instance of
    the class's attrs ``Options`` when it declares one). :meth:`route` is called for every
    request of every operation, streamed or not. It decides only the order: it picks among
    ``ctx.eligible(targets)`` and calls ``attempt(target)``, which applies the target's
    breaker, retries and timeout. A stream counts as answered once its first chunk arrived,
    so a strategy can fall back on a stream until its first byte.
    """

    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None: ...

    async def route(self, ctx: RequestContext, attempt: Attempt[T]) -> T: ...


class Plugin(Protocol):
    """A request-lifecycle plugin, registered by name through ``register_plugins``.

    Built once per config entry as ``cls(options)``: an instance of the class's attrs
    ``Options`` when it declares one, else the entry's ``config`` mapping (entries with the
    same name and config share one instance). It implements any of these async methods,
    each taking the :class:`RequestContext`; the entry's ``stage`` says which run:

    - ``before_request(ctx)`` (stage ``before_request``)
    - ``after_request(ctx)`` and ``on_chunk(ctx, chunk)`` (stage ``after_request``):
      ``on_chunk`` sees each stream chunk before it is written and returns it (edited
      through ``chunk.as_dict()`` or not), or None to drop it; raising
      :class:`~ferro.errors.RejectedError` ends the stream with that error
    - ``on_error(ctx)`` (stage ``on_error``)

    An instance may also implement ``exchange_completed(exchange)``, as the hook of that
    name but for the requests served on its config only (a limiter counting the tokens a
    request used): called once per request after the reply, whatever the stage.
    """

    def __init__(self, options: Any) -> None: ...


class Cache(Protocol):
    """A response-cache backend, registered by name through ``register_caches`` and chosen
    by the config's ``cache.backend``. Built once per config as ``cls(options, ttl)``
    (``options`` typed by the class's attrs ``Options`` when it declares one).
    :class:`ferro.ResponseCache` implements the key and the policy; a backend built on it
    implements ``get`` and ``store``.

    After the before-request plugins the pipeline asks :meth:`key` (None: not cacheable)
    and, unless the client sent ``Cache-Control: no-cache``, :meth:`get`; a fresh answer
    under a key goes to :meth:`put` (a streamed one once it has ended well)."""

    def key(self, ctx: RequestContext) -> str | None: ...

    async def get(self, key: str) -> CacheEntry | None: ...

    async def put(self, key: str, ctx: RequestContext, answer: Answer) -> None: ...


@attrs.define(slots=True)
class Call:
    """One upstream call an exchange made (a try of a target; one refused by its open
    circuit too, with no time spent)."""

    target: str
    #: Seconds from the request's arrival to the call, and from the call to its answer (for
    #: a stream: to its first chunk).
    start: float
    duration: float
    #: 200, or the failure's status and code.
    status: int = 200
    error: str | None = None
    #: The call's span in the request's trace (sent upstream in ``traceparent``).
    span_id: str | None = None
    #: The target's provider type (``openai`` for a target named ``openai-eu``).
    kind: str = ""


@attrs.define(slots=True, eq=False)
class Exchange:
    """A finished request, whatever happened to it, handed to ``exchange_completed``
    listeners after the reply is sent. Exactly one per request."""

    request_id: str
    operation: str
    model: str
    provider: str
    stream: bool
    status: int
    started: float
    duration: float
    #: Seconds from the request's arrival to the first byte of the answer (None: no answer).
    ttfb: float | None = None
    usage: Usage = attrs.Factory(Usage)
    #: US dollars, from the usage reported and the answering target's price (None: the
    #: price is unknown, or no target was called; 0 for a cache hit).
    cost: float | None = None
    #: The model the answering target was asked for (after aliases and its ``model_map``).
    upstream_model: str = ""
    error: GatewayError | None = None
    identity: Identity | None = None
    user: str | None = None
    client_ip: str = ""
    trace: TraceContext | None = None
    #: Targets tried, in order, and the number of provider calls made.
    targets: list[str] = attrs.Factory(list)
    attempts: int = 0
    #: Each upstream call, in order.
    calls: list[Call] = attrs.Factory(list)
    metadata: dict[str, Any] = attrs.Factory(dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def upstream_time(self) -> float:
        """Seconds spent waiting on upstream calls, until the answer (a stream's: its first
        chunk)."""
        return sum(call.duration for call in self.calls)

    @property
    def overhead(self) -> float | None:
        """What the gateway added before the answer's first byte, upstream waits aside
        (backoff between retries included); None for a request that got no answer."""
        if self.ttfb is None:
            return None
        return max(0.0, self.ttfb - self.upstream_time)

    @property
    def key_id(self) -> str | None:
        return self.identity.key_id if self.identity else None

