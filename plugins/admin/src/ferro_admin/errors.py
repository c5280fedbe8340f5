"""The management API's own refusals, in the gateway's one error schema."""

from __future__ import annotations

from ferro import GatewayError, PermissionDeniedError

__all__ = ["InsufficientScopeError", "NotFoundError", "NotImplementedYetError"]


class NotFoundError(GatewayError):
    """An id or version that names nothing (404)."""

    status = 404
    type = "invalid_request_error"
    code = "resource_not_found"


class NotImplementedYetError(GatewayError):
    """A route whose store is not configured (501): the message says which one to set."""

    status = 501
    type = "invalid_request_error"
    code = "not_implemented"


class InsufficientScopeError(PermissionDeniedError):
    """A valid key without the scope the route needs (403)."""

    code = "insufficient_scope"
