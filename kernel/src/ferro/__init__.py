"""Ferro AI Gateway kernel: the plugin contract and the pieces plugins build on.

Plugins import from here (and from :mod:`ferro.testing` in their tests) and nothing else.
"""

from ferro import wire
from ferro.config import (
    BreakerConfig,
    Config,
    Duration,
    PluginConfig,
    ProviderSettings,
    RetryConfig,
    StrategyConfig,
    TargetConfig,
    load_config,
    parse_config,
)
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
from ferro.openai_compat import OpenAICompatibleProvider
from ferro.plugins import make_plugin_manager
from ferro.provider import BaseProvider, NoOptions
from ferro.resilience import BreakerState, CircuitBreaker, backoff_delay
from ferro.sse import iter_sse
from ferro.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Exchange,
    ModelInfo,
    Plugin,
    Provider,
    RawFrames,
    RequestContext,
    Strategy,
    Target,
    Usage,
)
from ferro.version import __version__

__all__ = [
    "AuthenticationError",
    "BaseProvider",
    "BreakerConfig",
    "BreakerState",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "CircuitBreaker",
    "CircuitOpenError",
    "Config",
    "ConfigError",
    "Duration",
    "Exchange",
    "GatewayError",
    "InvalidRequestError",
    "ModelInfo",
    "ModelNotFoundError",
    "NoOptions",
    "OpenAICompatibleProvider",
    "PermissionDeniedError",
    "Plugin",
    "PluginConfig",
    "PluginError",
    "Provider",
    "ProviderSettings",
    "RateLimitError",
    "RawFrames",
    "RejectedError",
    "RequestContext",
    "RetryConfig",
    "Strategy",
    "StrategyConfig",
    "Target",
    "TargetConfig",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "Usage",
    "__version__",
    "backoff_delay",
    "can_fall_back",
    "hookimpl",
    "iter_sse",
    "load_config",
    "make_plugin_manager",
    "parse_config",
    "wire",
]
