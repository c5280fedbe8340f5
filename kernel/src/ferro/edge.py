"""The gateway's HTTP edge, request by request: the ``Host`` names it serves, the body type a
JSON route takes, how long a body may take to arrive, and which routes need no API key.
Every refusal is an error in the one schema.

There is no middleware (see :mod:`ferro.app`): the routes call :class:`Edge` themselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ferro.config import ServerConfig
from ferro.errors import GatewayError, InvalidRequestError

__all__ = [
    "SERVER",
    "BodyTimeoutError",
    "Edge",
    "HostNotAllowedError",
    "ShuttingDownError",
    "UnsupportedMediaTypeError",
    "is_public",
    "public_route",
]

H = TypeVar("H", bound=Callable[..., Any])

#: The ``Server`` header of every response: no software or version for a scanner to match.
SERVER = "ferro"

#: The ``Host`` names a gateway bound to a loopback address serves by default.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

_PUBLIC = "__ferro_public__"
_SERVED_KEPT = 64


def public_route(handler: H) -> H:
    """Mark a handler a plugin adds in ``configure_app`` as public: it answers without an
    API key even when ``server.api_keys`` are set. Every other route requires a key then.
    For what reveals nothing and must answer callers without one, such as a probe::

        app.router.add_get("/status", ferro.public_route(status))
    """
    setattr(getattr(handler, "__func__", handler), _PUBLIC, True)
    return handler


def is_public(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` was marked with :func:`public_route`."""
    return getattr(handler, _PUBLIC, False)


class UnsupportedMediaTypeError(InvalidRequestError):
    """A JSON route was sent a body of another type (415)."""

    status = 415
    code = "unsupported_media_type"


class HostNotAllowedError(InvalidRequestError):
    """The request names a ``Host`` the gateway does not serve (421), as a page reaching a
    local gateway through DNS rebinding does."""

    status = 421
    code = "host_not_allowed"


class BodyTimeoutError(InvalidRequestError, TimeoutError):
    """The request body did not arrive within ``server.body_timeout`` (408). It is a
    TimeoutError too, so that aiohttp, which reads what is left of a body after the reply,
    ends the connection quietly instead of logging an unhandled error."""

    status = 408
    code = "body_timeout"


class ShuttingDownError(GatewayError):
    """The gateway is shutting down (503): try again, another replica will answer."""

    status = 503
    type = "server_error"
    code = "server_shutting_down"
    retryable = True


class Edge:
    """The per-request checks of one gateway's ``server`` settings."""

    def __init__(self, settings: ServerConfig) -> None:
        self.apply(settings)

    def apply(self, settings: ServerConfig) -> None:
        """Check requests against ``settings`` from now on (a config reload calls this)."""
        names = settings.allowed_hosts or (LOOPBACK_NAMES if _is_loopback(settings.host)
                                           else ("*",))
        self.hosts: frozenset[str] | None = (
            None if "*" in names else frozenset(_config_hostname(n) for n in names))
        #: ``Host`` values already found served, as sent (a few, so each is parsed once).
        self._served: set[str] = set()
        self.body_timeout = float(settings.body_timeout)

    def check(self, request: web.Request) -> None:
        """The checks of every route: the ``Host`` (421), and a deadline on the body."""
        hosts = self.hosts
        if hosts is not None:
            value = request.headers.get("Host")
            if value is not None and value not in self._served:
                if _hostname(value) not in hosts:
                    raise HostNotAllowedError(
                        f"this gateway does not serve the host {value[:100]!r}: add it to "
                        "server.allowed_hosts")
                if len(self._served) < _SERVED_KEPT:
                    self._served.add(value)
        body = request.content
        if not body.is_eof():  # the body is still on its way: bound the wait for it
            timer = asyncio.get_running_loop().call_later(
                self.body_timeout, body.set_exception, BodyTimeoutError(
                    f"the request body did not arrive within server.body_timeout "
                    f"({self.body_timeout:g}s)"))
            body.on_eof(timer.cancel)

    def check_json(self, request: web.Request) -> None:
        """:meth:`check`, and the body must be sent as ``application/json`` (parameters such
        as ``charset`` allowed; 415 otherwise): a web page may send a form or ``text/plain``
        to another origin without asking, never JSON."""
        self.check(request)
        value = request.headers.get("Content-Type", "")
        if value != "application/json" and \
                value.partition(";")[0].strip().lower() != "application/json":
            sent = f"got {value[:100]!r}" if value else "no Content-Type was sent"
            raise UnsupportedMediaTypeError(
                f"send the request body as JSON with 'Content-Type: application/json' ({sent})")


def _hostname(value: str) -> str:
    """The name of a ``Host`` header, lower-cased and without its port."""
    if value.startswith("["):
        return value[:value.find("]") + 1].lower()
    return value.partition(":")[0].lower()


def _config_hostname(name: str) -> str:
    """An ``allowed_hosts`` entry as :func:`_hostname` gives it (``::1`` is ``[::1]``)."""
    if name.count(":") > 1 and not name.startswith("["):
        return f"[{name.lower()}]"
    return _hostname(name)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
