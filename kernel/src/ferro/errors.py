"""The one error schema, ``{"error": {"message", "type", "code", "param"}}``, and the
exceptions that map onto it.

Every error the gateway returns, on every route, is a :class:`GatewayError` rendered by
:meth:`GatewayError.to_dict`. Providers raise :class:`UpstreamError` (or a subclass) for
anything an upstream said; strategies read :attr:`GatewayError.retryable` to decide whether
to retry or fall back.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

__all__ = [
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
    "RequestTooLargeError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "can_fall_back",
    "error_body",
    "transport_error",
]

#: Upstream statuses worth another attempt (on the same target or the next one).
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class GatewayError(Exception):
    """An error with an HTTP status and an OpenAI-style error body."""

    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


def error_body(
    message: str, type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """The error schema as a dict; ``param`` is included as OpenAI does (null when unset)."""
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


class InvalidRequestError(GatewayError):
    """The client's request is malformed or asks for something impossible (400)."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class RequestTooLargeError(InvalidRequestError):
    """The request body is over ``server.max_body_size`` (413)."""

    status = 413
    code = "request_too_large"

    @classmethod
    def from_http(cls, exc: Exception) -> RequestTooLargeError:
        """From aiohttp's ``HTTPRequestEntityTooLarge`` (its text says both sizes)."""
        return cls(f"request body too large: {getattr(exc, 'text', exc)}")


class ModelNotFoundError(InvalidRequestError):
    code = "model_not_found"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class RejectedError(GatewayError):
    """Raised by a request-lifecycle plugin to refuse a request with a 4xx.

    ``RejectedError("blocked word detected: password", code="content_blocked")`` becomes a
    400 whose message names the plugin. Pass ``status=403`` or ``status=429`` where that is
    the truer answer.
    """

    status = 400
    type = "invalid_request_error"
    code = "request_rejected"


class PluginError(GatewayError):
    """A plugin raised something other than :class:`RejectedError`: a bug, answered cleanly."""

    status = 500
    type = "server_error"
    code = "plugin_error"


class ConfigError(GatewayError):
    """The configuration is invalid; the message names the key, its path and its line."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_config"


class UpstreamError(GatewayError):
    """An upstream provider answered with an error. The status is the upstream's."""

    type = "api_error"
    code = "upstream_error"

    def __init__(self, message: str, *, status: int = 502, provider: str = "", **kw: Any):
        kw.setdefault("retryable", status in RETRYABLE_STATUSES)
        kw.setdefault("type", upstream_error_type(status))
        kw.setdefault("code", upstream_error_code(status))
        super().__init__(message, status=status, **kw)
        self.provider = provider


class UpstreamTimeoutError(UpstreamError):
    def __init__(self, message: str, *, provider: str = "", **kw: Any):
        kw.setdefault("code", "upstream_timeout")
        kw.setdefault("retryable", True)
        super().__init__(message, status=504, provider=provider, **kw)


class UpstreamConnectionError(UpstreamError):
    def __init__(self, message: str, *, provider: str = "", **kw: Any):
        kw.setdefault("code", "upstream_unreachable")
        super().__init__(message, status=502, provider=provider, retryable=True, **kw)


def transport_error(provider: str, exc: BaseException,
                    timeout: float | None = None) -> UpstreamError:
    """The error for a call that never got an answer: a timeout or a broken connection."""
    if isinstance(exc, TimeoutError):
        within = f" within {timeout:g}s" if timeout else ""
        return UpstreamTimeoutError(f"{provider} did not answer{within}", provider=provider)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamConnectionError(
            f"{provider} closed the connection before its answer was complete",
            provider=provider, code="upstream_disconnected")
    return UpstreamConnectionError(f"cannot reach {provider}: {type(exc).__name__}: {exc}",
                                   provider=provider)


class CircuitOpenError(GatewayError):
    """The target's circuit breaker is open; the strategy moves on without waiting."""

    status = 503
    type = "server_error"
    code = "circuit_open"
    retryable = False


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    503: "upstream_unavailable",
    529: "upstream_overloaded",
}


def upstream_error_type(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def upstream_error_code(status: int) -> str:
    return _CODE_BY_STATUS.get(status, "upstream_error")


def can_fall_back(exc: GatewayError) -> bool:
    """Whether another target may succeed where this one failed.

    Retryable failures (429, 5xx, timeouts, connection errors) and open circuits, yes. An
    upstream's own 401/403/404 (a bad key or an unknown model there) and a context-window
    error (another model may have a larger one), yes. A request the client got wrong, no.
    """
    if exc.retryable or isinstance(exc, CircuitOpenError):
        return True
    if isinstance(exc, UpstreamError):
        return exc.status in (401, 403, 404) or exc.code == "context_length_exceeded"
    return False
