"""Who may call a management route: a stored API key holding the route's scope.

The kernel has already checked the key (a missing, unknown, revoked or expired key is a
401 there whenever keys exist). Here a route also refuses a caller the kernel let through
because no key was needed: ``/admin`` always needs a stored key, even on a gateway that
has none yet (create the first with ``ADMIN_BOOTSTRAP_KEY``). Keys of the config's
``server.api_keys`` hold only the ``inference`` scope, so they get a 403 here.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web
from ferro import PIPELINE, AuthenticationError, Identity, request_identity, scopes_allow

from ferro_admin.errors import InsufficientScopeError, NotImplementedYetError

__all__ = ["READ", "WRITE", "authorize", "needs"]

#: The scope of the routes that read, and of those that change something.
READ = "read_only"
WRITE = "admin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorize(request: web.Request, scope: str) -> Identity:
    """The caller of ``request`` if its stored key grants ``scope``; else the refusal."""
    if request.app[PIPELINE].keys is None:
        raise NotImplementedYetError(
            "the management API needs an API key store: configure storage.keys (or set "
            "API_KEY_STORE_BACKEND) and restart the gateway")
    identity = request_identity(request)
    if identity is None:
        if request.headers.get("Authorization"):
            raise AuthenticationError("invalid API key")
        raise AuthenticationError(
            "missing API key: /admin needs a stored key with the admin or read_only scope, "
            "sent as 'Authorization: Bearer <key>' (create the first one with "
            "ADMIN_BOOTSTRAP_KEY)")
    if not scopes_allow(identity.scopes, scope):
        held = ", ".join(sorted(identity.scopes)) or "none"
        wanted = "admin" if scope == WRITE else "read_only or admin"
        raise InsufficientScopeError(
            f"API key {identity.key_id} may not do this: it needs the {wanted} scope "
            f"(its scopes: {held})")
    return identity


def needs(scope: str, handler: Handler) -> Handler:
    """``handler`` run only for a caller holding ``scope``."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        authorize(request, scope)
        return await handler(request)

    return checked
