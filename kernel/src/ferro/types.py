"""The values that flow through the gateway, and the protocols plugins implement.

Requests, responses and stream chunks keep the OpenAI wire format as plain dicts: a
provider that speaks OpenAI passes them through untouched (every field, known or not), and
a provider that speaks another dialect translates from and to that one shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs
import orjson

if TYPE_CHECKING:

    from ferro.config import StrategyConfig
    from ferro.errors import GatewayError
    from ferro.resilience import CircuitBreaker

__all__ = [
    "CallTarget",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Exchange",
    "ModelInfo",
    "Plugin",
    "Provider",
    "RawFrames",
    "RequestContext",
    "Strategy",
    "Target",
    "Usage",
]

T = TypeVar("T")


@attrs.define(slots=True)
class ChatRequest:
    """An OpenAI chat-completions request.

    ``body`` is the request object exactly as the client sent it (after validation and
    alias resolution); it is what OpenAI-compatible providers forward. Plugins may change
    it (``request.body["model"] = ...``) before the strategy runs.
    """

    body: dict[str, Any]

    @property
    def model(self) -> str:
        return self.body["model"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        """Whether the client asked for the usage chunk at the end of a stream."""
        opts = self.body.get("stream_options")
        return bool(opts and opts.get("include_usage"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@attrs.define(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    #: Prompt tokens written to a provider's prompt cache (Anthropic bills them apart).
    cache_creation_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        """Read an OpenAI usage object; anything missing or not a count reads as 0."""
        if not isinstance(usage, Mapping):
            return cls()
        details = usage.get("prompt_tokens_details")
        cdetails = usage.get("completion_tokens_details")
        details = details if isinstance(details, Mapping) else {}
        cdetails = cdetails if isinstance(cdetails, Mapping) else {}
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=_count(usage.get("total_tokens")) or prompt + completion,
            cached_tokens=_count(details.get("cached_tokens")),
            reasoning_tokens=_count(cdetails.get("reasoning_tokens")),
            cache_creation_tokens=_count(details.get("cache_creation_tokens")),
        )

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens or self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens or self.cache_creation_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
            if self.cache_creation_tokens:
                out["prompt_tokens_details"]["cache_creation_tokens"] = self.cache_creation_tokens
        if self.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out


@attrs.define(slots=True)
class ChatResponse:
    """An OpenAI ``chat.completion`` object. ``body["provider"]`` names who answered."""

    body: dict[str, Any]

    @property
    def usage(self) -> Usage:
        return Usage.from_openai(self.body.get("usage"))

    @property
    def provider(self) -> str:
        return self.body.get("provider", "")

    def to_json(self) -> bytes:
        return orjson.dumps(self.body)


@attrs.define(slots=True)
class ChatChunk:
    """One ``chat.completion.chunk``.

    A translating provider builds ``data`` (a dict). A pass-through provider hands over
    ``raw``, the chunk's JSON bytes as the upstream sent them, and the gateway parses them
    only when it has to (see :meth:`as_dict`). ``more`` is a hint that another chunk follows
    at once (it arrived in the same read), so the gateway may send both in one write.
    """

    data: dict[str, Any] | None = None
    raw: bytes | None = None
    more: bool = False

    def to_json(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return orjson.dumps(self.data)

    def as_dict(self) -> dict[str, Any]:
        if self.data is None:
            self.data = orjson.loads(self.raw)  # type: ignore[arg-type]
        return self.data

    def carries_usage(self) -> bool:
        """Cheap test for a usage object, without parsing a pass-through chunk."""
        if self.data is not None:
            return bool(self.data.get("usage"))
        raw = self.raw or b""
        return b'"usage"' in raw and b'"usage":null' not in raw and b'"usage": null' not in raw


@attrs.define(slots=True)
class RawFrames:
    """Complete SSE ``data:`` frames of OpenAI chunks, relayed byte for byte: what a
    pass-through provider yields for a stretch of stream that needs no attention (no usage,
    no error, no end). The gateway parses them only when a plugin needs the chunks."""

    frames: bytes
    #: As for ChatChunk: more of the same read follows (parsed chunks), send them together.
    more: bool = False

    def chunks(self) -> list[ChatChunk]:
        from ferro.sse import split_events

        events, _ = split_events(self.frames)
        return [ChatChunk(raw=data) for _event, data in events if data]


@attrs.define(slots=True)
class ModelInfo:
    id: str
    owned_by: str
    created: int = 0

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


@runtime_checkable
class Provider(Protocol):
    """An LLM provider, registered by type name through ``register_providers``.

    The class is instantiated once per configured provider with ``(name, settings,
    session)``: the instance name from the config, its :class:`ProviderSettings`, and the
    gateway's one shared ``aiohttp.ClientSession``.
    """

    name: str
    #: Env var holding the API key (None when the provider needs none).
    env_api_key: ClassVar[str | None]
    #: Env var holding the base URL, and the default base URL.
    env_base_url: ClassVar[str | None]
    default_base_url: ClassVar[str]

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Answer a non-streaming request, or raise a :class:`GatewayError`."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk | RawFrames]:
        """Yield the chunks of a streaming answer, the last carrying ``finish_reason``
        (then a usage-only chunk when usage is known). Raise a :class:`GatewayError` on
        failure, including a stream that ends without its terminal event."""
        ...

    def supports_model(self, model: str) -> bool: ...

    def static_models(self) -> list[ModelInfo]:
        """The configured or default models, without asking the upstream."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """The models this provider serves (discovered where it can, cached)."""
        ...

    async def check_health(self) -> None:
        """A cheap deep check; raise a :class:`GatewayError` when unhealthy."""
        ...


@attrs.define(slots=True, eq=False)
class Target:
    """One configured routing target: a provider instance and its per-target policy."""

    name: str
    provider: Provider
    weight: float = 1.0
    attempts: int = 1
    backoff: float = 0.1
    max_backoff: float = 2.0
    breaker: CircuitBreaker | None = None


#: What a strategy calls to try one target: it returns the result or raises a
#: :class:`GatewayError` (whose ``retryable`` says whether another attempt may help).
CallTarget = Callable[[Target], Awaitable[T]]


class Strategy(Protocol):
    """A routing strategy, registered by mode name through ``register_strategies``.

    Built once per config with ``(config, targets)``; :meth:`route` is called for every
    request, streamed or not, with ``call`` doing the actual provider call (through the
    target's breaker and timeout). A stream counts as succeeded once its first chunk
    arrived, so a strategy can fall back on a stream until its first byte.
    """

    def __init__(self, config: StrategyConfig, targets: list[Target]) -> None: ...

    async def route(self, request: ChatRequest, call: CallTarget[T]) -> T: ...


@attrs.define(slots=True, eq=False)
class RequestContext:
    """What request-lifecycle plugins see and may change.

    ``before_request`` plugins may edit ``request.body``, set ``response`` to answer without
    calling a provider (a cache hit), or raise :class:`~ferro.errors.RejectedError`.
    ``after_request`` plugins see ``response`` (for a stream: the assembled usage in
    ``usage``); ``on_error`` plugins see ``error``. ``metadata`` is theirs to share.
    """

    request: ChatRequest
    request_id: str
    api_key: str | None = None
    response: ChatResponse | None = None
    error: GatewayError | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = attrs.Factory(dict)


class Plugin(Protocol):
    """A request-lifecycle plugin, registered by name through ``register_plugins``.

    Instantiated once per config entry as ``cls(config)``: the entry's ``config`` mapping, or
    an instance of the class's attrs ``Config`` when it declares one (entries with the same
    name and config share one instance). It implements any of the async methods
    ``before_request(ctx)``, ``after_request(ctx)`` and ``on_error(ctx)`` (each taking a
    :class:`RequestContext`); the config entry's ``stage`` says which one runs.
    """

    def __init__(self, config: Any) -> None: ...


@attrs.define(slots=True, eq=False)
class Exchange:
    """A finished request, handed to ``exchange_completed`` listeners after the reply is sent."""

    request_id: str
    model: str
    provider: str
    stream: bool
    status: int
    started: float
    duration: float
    usage: Usage
    error: GatewayError | None = None
    api_key: str | None = None
    metadata: dict[str, Any] = attrs.Factory(dict)

    @property
    def ok(self) -> bool:
        return self.error is None

