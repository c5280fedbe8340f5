"""Ferro AI Gateway kernel: the plugin contract and the pieces plugins build on.

Plugins import from here (and from :mod:`ferro.testing` in their tests) and nothing else.
``__all__`` is that surface, grouped as README's "For plugin authors" lists it.
"""

from ferro import embeddings, json_tool, storage_sql, wire
from ferro.app import (
    ENV,
    HEALTH,
    PIPELINE,
    PLUGIN_MANAGER,
    REQUEST_LOG,
    STORES,
    reload,
    request_identity,
)
from ferro.caching import CacheEntry, CacheOptions, ResponseCache
from ferro.config import (
    Condition,
    Config,
    Duration,
    OptionError,
    ProviderSettings,
    RetryConfig,
    StrategyConfig,
    TimeoutConfig,
    build_options,
    load_config,
    parse_config,
)
from ferro.edge import public_route
from ferro.errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    PluginError,
    RateLimitError,
    RejectedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    can_fall_back,
)
from ferro.hookspecs import hookimpl
from ferro.keys import KeyRing, scopes_allow
from ferro.openai_compat import OpenAICompatibleProvider
from ferro.operations import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    Answer,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    CompletionsResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    Operation,
    OperationRequest,
    RawFrames,
    Usage,
)
from ferro.pipeline import Pipeline, routable_header
from ferro.plugins import make_plugin_manager
from ferro.pricing import TIERS, Price, Pricing
from ferro.provider import BaseProvider, NoOptions
from ferro.resilience import BreakerState, backoff_delay, retry_after_seconds
from ferro.routing import no_target, target_named, try_in_order
from ferro.sse import iter_sse
from ferro.storage import (
    SCOPES,
    ConfigVersion,
    KeyRecord,
    KeyUsage,
    LogFilter,
    LogRow,
    LogStats,
    Storage,
    Stores,
)
from ferro.tasks import stop_task
from ferro.tracing import TraceContext
from ferro.types import (
    Attempt,
    Cache,
    Call,
    Exchange,
    Identity,
    ModelInfo,
    Plugin,
    Provider,
    RequestContext,
    Strategy,
    Target,
)
from ferro.version import __version__

__all__ = [  # noqa: RUF022 (grouped as README lists it)
    # hooks and the plugin manager
    "hookimpl",
    "make_plugin_manager",
    "public_route",
    # the running app, for plugins that add routes or listeners
    "ENV",
    "HEALTH",
    "PIPELINE",
    "PLUGIN_MANAGER",
    "REQUEST_LOG",
    "STORES",
    "Pipeline",
    "reload",
    "request_identity",
    # contracts
    "Attempt",
    "Cache",
    "Plugin",
    "Provider",
    "Strategy",
    # what the pipeline hands plugins
    "Call",
    "Exchange",
    "Identity",
    "ModelInfo",
    "RequestContext",
    "Target",
    "routable_header",
    "TraceContext",
    "BreakerState",
    "Price",
    "Pricing",
    "TIERS",
    # storage and keys
    "SCOPES",
    "ConfigVersion",
    "KeyRecord",
    "KeyRing",
    "KeyUsage",
    "LogFilter",
    "LogRow",
    "LogStats",
    "Storage",
    "Stores",
    "scopes_allow",
    "storage_sql",
    # resilience helpers
    "backoff_delay",
    "retry_after_seconds",
    "stop_task",
    # caching
    "CacheEntry",
    "CacheOptions",
    "ResponseCache",
    # routing
    "no_target",
    "target_named",
    "try_in_order",
    # operations and their values
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "Answer",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "CompletionsRequest",
    "CompletionsResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "Operation",
    "OperationRequest",
    "RawFrames",
    "Usage",
    # building providers
    "BaseProvider",
    "NoOptions",
    "OpenAICompatibleProvider",
    "embeddings",
    "iter_sse",
    "json_tool",
    "wire",
    # errors
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigError",
    "GatewayError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "RateLimitError",
    "RejectedError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "can_fall_back",
    # configuration
    "Condition",
    "Config",
    "Duration",
    "OptionError",
    "ProviderSettings",
    "build_options",
    "RetryConfig",
    "StrategyConfig",
    "TimeoutConfig",
    "load_config",
    "parse_config",
    "__version__",
]
