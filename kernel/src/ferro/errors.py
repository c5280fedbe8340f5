"""The one error schema, ``{"error": {"message", "type", "code", "param"}}``, and the
exceptions that map onto it.

Every error the gateway returns, on every route, is a :class:`GatewayError` rendered by
:meth:`GatewayError.to_dict`. Providers raise :class:`UpstreamError` (or a subclass) for
anything an upstream said; strategies read :attr:`GatewayError.retryable` to decide whether
to retry or fall back. What an upstream said is scrubbed of credentials (see
:mod:`ferro.redaction`) as its UpstreamError is made, so no message or relayed header can
carry the operator's keys to a client or a log.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from ferro.http_client import Disconnected
from ferro.redaction import scrub

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
    "untranslatable",
]

#: Upstream statuses worth another attempt (on the same target or the next one).
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: Upstream statuses that refuse the gateway's own credentials for a provider.
CREDENTIALS_REFUSED = frozenset({401, 403})
#: The code of the 502 for a provider that refused the gateway's credentials.
UPSTREAM_AUTH_ERROR = "upstream_auth_error"
#: Failures another target may well not have (its own key, model or size limits).
_FALL_BACK_CODES = frozenset({"context_length_exceeded", UPSTREAM_AUTH_ERROR,
                              "upstream_response_too_large", "stream_frame_too_large",
                              "stream_too_large"})
#: The longest upstream message passed on, in characters.
MAX_UPSTREAM_MESSAGE = 2000


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
    """An upstream provider answered with an error. The status is the upstream's, except
    for a 401 or 403: the upstream refused the gateway's own credentials, which is no
    fault of the caller's, so it is a 502 ``upstream_auth_error`` naming the provider
    (``upstream_status`` keeps what the upstream said). The message is scrubbed of
    credentials and cut to :data:`MAX_UPSTREAM_MESSAGE` characters; header values are
    scrubbed too."""

    type = "api_error"
    code = "upstream_error"

    def __init__(self, message: str, *, status: int = 502, provider: str = "", **kw: Any):
        self.upstream_status = status
        if status in CREDENTIALS_REFUSED:
            message = (f"the gateway's credentials for provider {provider or 'upstream'} were "
                       f"refused (upstream HTTP {status}): {message}")
            status = 502
            kw.setdefault("code", UPSTREAM_AUTH_ERROR)
            kw.setdefault("retryable", False)
        kw.setdefault("retryable", status in RETRYABLE_STATUSES)
        kw.setdefault("type", upstream_error_type(status))
        kw.setdefault("code", upstream_error_code(status))
        headers = kw.pop("headers", None)
        if headers:
            kw["headers"] = {name: scrub(value) for name, value in headers.items()}
        super().__init__(scrub(message)[:MAX_UPSTREAM_MESSAGE], status=status, **kw)
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
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError
                  | Disconnected):
        return UpstreamConnectionError(
            f"{provider} closed the connection before its answer was complete",
            provider=provider, code="upstream_disconnected")
    return UpstreamConnectionError(f"cannot reach {provider}: {type(exc).__name__}: {exc}",
                                   provider=provider)


def untranslatable(provider: str, exc: BaseException) -> InvalidRequestError:
    """The 400 for a request a provider failed to translate into its own format before
    calling its upstream: the request holds something the translation cannot read. Never
    retried, never sent to another target."""
    return InvalidRequestError(
        scrub(f"provider {provider} cannot translate this request: {type(exc).__name__}: "
              f"{exc}")[:MAX_UPSTREAM_MESSAGE], code="untranslatable_request")


class CircuitOpenError(GatewayError):
    """The target's circuit breaker is open; the strategy moves on without waiting."""

    status = 503
    type = "server_error"
    code = "circuit_open"
    retryable = False


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

_CODE_BY_STATUS = {
    400: "invalid_request",
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
    upstream that refused the gateway's credentials or does not know the model (its 404),
    a context-window error (another model may have a larger one) and an answer past the
    config's ``limits`` (before a stream's first chunk), yes. A request the client got
    wrong, no.
    """
    if exc.retryable or isinstance(exc, CircuitOpenError):
        return True
    if isinstance(exc, UpstreamError):
        return exc.status == 404 or exc.code in _FALL_BACK_CODES
    return False
