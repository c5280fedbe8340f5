"""The gateway's client connections: aiohttp's HTTP/1.1 protocol with the edge's time limit
on request heads and its error schema, and the limit on open connections.

- A client has ``server.header_timeout`` to send a whole request head: from connecting,
  and on a kept-alive connection from the head's first byte (a kept-alive connection may
  wait ``server.keepalive_timeout`` for its next request). A head still incomplete then is
  answered 408 and its connection closed; a connection that sent nothing is just closed.
- A malformed request (bad framing: an invalid request line, a bad ``Content-Length``) is
  a 400 in the error schema, and closes its connection.
- Past ``server.max_connections`` open connections, a new one is accepted, answered 503
  with ``Retry-After`` at once, and closed. Answering, rather than leaving it in the listen
  backlog, tells the client at once (the OpenAI SDKs retry a 503; a load balancer tries
  another replica), and the listening socket keeps answering. File descriptors are kept in
  reserve for these answers; should even those run out, a connection is reset.
- At start-up the soft limit on open files is raised to the hard limit where allowed, and
  the connection limit is kept below it: each connection may hold a second descriptor, for
  its upstream call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from http import HTTPStatus

from aiohttp import web

from ferro.config import ServerConfig
from ferro.edge import SERVER
from ferro.errors import GatewayError, InvalidRequestError
from ferro.pipeline import request_id
from ferro.routes.openai import json_error

__all__ = ["Connections", "GatewayProtocol", "connection_limit", "raise_open_file_limit",
           "raw_answer"]

log = logging.getLogger("ferro.connections")

#: File descriptors kept for all but client connections and their upstream calls: the
#: listening socket, log files, plugins' files and stores, and the connections refused.
FD_RESERVE = 64
#: Refused connections waiting to close at once, at most; past that, new ones are reset.
MAX_REFUSING = 32
#: Seconds a refused connection may stay open after its answer, for the client to read it.
REFUSAL_LINGER = 1.0
#: Seconds between two checks for connections gone idle, while draining.
DRAIN_POLL = 0.05


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit where allowed; return the soft
    limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
        else:
            soft = wanted
    return soft


def connection_limit(wanted: int, open_files: int) -> int:
    """``server.max_connections`` (``wanted``), lowered to what ``open_files`` file
    descriptors allow."""
    room = max(1, (open_files - FD_RESERVE) // 2)
    if wanted > room:
        log.warning("server.max_connections lowered from %d to %d: the open-file limit is %d "
                    "(raise it with `ulimit -n`)", wanted, room, open_files)
    return min(wanted, room)


def raw_answer(error: GatewayError) -> bytes:
    """A whole HTTP/1.1 response with ``error``, closing its connection: what is written
    outside any request (at the connection limit, or to a head that never completed)."""
    body = error.to_json()
    lines = [f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
             "Content-Type: application/json", f"Content-Length: {len(body)}",
             "Connection: close", f"Server: {SERVER}",
             f"x-should-retry: {'true' if error.retryable else 'false'}",
             *(f"{name}: {value}" for name, value in error.headers.items()), "", ""]
    return "\r\n".join(lines).encode() + body


class Connections:
    """The listening socket's protocol factory: a :class:`GatewayProtocol` for each new
    connection while fewer than ``limit`` are open, a prompt 503 past it. It keeps the open
    ones, to close them as they go idle when the gateway shuts down."""

    def __init__(self, server: web.Server, settings: ServerConfig, limit: int) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.header_timeout = float(settings.header_timeout)
        self.keepalive_timeout = float(settings.keepalive_timeout)
        self.open: set[GatewayProtocol] = set()
        self.refusing = 0
        self.refusal = raw_answer(GatewayError(
            f"the gateway is at its connection limit ({limit} open); retry shortly",
            status=503, code="too_many_connections", retryable=True,
            headers={"Retry-After": "1"}))
        self.head_timeout = raw_answer(InvalidRequestError(
            f"the request head did not arrive within server.header_timeout "
            f"({self.header_timeout:g}s)", status=408, code="header_timeout"))
        self._next_warning = -math.inf

    def __call__(self) -> asyncio.Protocol:
        if len(self.open) < self.limit:
            connection = GatewayProtocol(self)
            self.open.add(connection)
            return connection
        now = self.loop.time()
        if now >= self._next_warning:
            self._next_warning = now + 60
            log.warning("%d connections are open (server.max_connections): new ones are "
                        "answered 503", self.limit)
        return _Refusal(self)

    async def drain(self, deadline: float) -> None:
        """Until every connection has closed, or ``deadline`` (a ``loop.time()``): close
        each as it goes idle (requests in flight finish first)."""
        while self.open and self.loop.time() < deadline:
            for connection in list(self.open):
                if connection.idle:
                    connection.force_close()
            await asyncio.sleep(min(DRAIN_POLL, max(0.0, deadline - self.loop.time())))


class GatewayProtocol(web.RequestHandler):
    """aiohttp's protocol with the deadline on request heads and errors in the schema."""

    __slots__ = ("_connections", "_head_started", "_head_timer")

    def __init__(self, connections: Connections) -> None:
        super().__init__(connections.server, loop=connections.loop, access_log=None,
                         keepalive_timeout=connections.keepalive_timeout)
        self._connections = connections
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False

    @property
    def idle(self) -> bool:
        """Whether no request is being handled (the connection waits for one)."""
        task = self._task_handler
        return self._waiter is not None or task is None or task.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(self._connections.header_timeout,
                                                 self._head_expired)

    def data_received(self, data: bytes) -> None:
        waiting = self._head_timer is not None or self._waiter is not None  # for a head
        super().data_received(data)
        if self._messages:  # a whole head has arrived (most come in one read: no timer)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._head_started = False
        elif waiting:  # part of a head: the rest must follow in time
            self._head_started = True
            if self._head_timer is None:  # from its first byte, on a kept-alive connection
                self._head_timer = self._loop.call_later(self._connections.header_timeout,
                                                         self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._waiter is None or self._messages or self.transport is None:
            return  # a request is being handled, or the connection has closed
        if self._head_started:
            self.transport.write(self._connections.head_timeout)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._connections.open.discard(self)
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """What aiohttp answers itself, in the error schema: a malformed request (400), or
        a failure outside the routes' own error handling."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started: no error can be sent")
        if status == 400:
            reason = (message or "").strip().partition("\n")[0].rstrip(":")
            log.debug("malformed request from %s: %s", request.remote, reason)
            error = InvalidRequestError(f"malformed HTTP request: {reason}",
                                        code="malformed_request")
        else:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            error = GatewayError("internal error; the details have been logged", status=status)
        response = json_error(error)
        response.headers["Server"] = SERVER
        response.headers["X-Request-ID"] = request_id(request)  # type: ignore[arg-type]
        response.force_close()
        return response


class _Refusal(asyncio.Protocol):
    """A connection past the limit: answered at once and half-closed (the client sees the
    end of the answer), what it sends read and dropped, and closed when the client closes
    its end (or after :data:`REFUSAL_LINGER`). Closing with the client's request unread
    would reset the connection, and the answer could be lost."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        connections = self._connections
        connections.refusing += 1
        if connections.refusing > MAX_REFUSING:
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.write(connections.refusal)  # type: ignore[attr-defined]
        transport.write_eof()  # type: ignore[attr-defined]
        self._timer = connections.loop.call_later(REFUSAL_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connections.refusing -= 1
        if self._timer is not None:
            self._timer.cancel()
