"""A small Redis client for the one call the limiter makes per request: commands pipelined
on one connection, each reply matched to its command in order.

redis-py takes a pooled connection, writes, reads and puts it back for every command:
about 75 us of CPU per call, measured with 32 callers at once, which was the largest cost
of a rate-limited request. Here the calls of one turn of the loop share one write, and a
call is a future resolved as its reply is parsed (by hiredis' C parser), watched by one
timer per connection: about 14 us. It speaks RESP2 and only what the limiter needs
(``AUTH``, ``SELECT``, ``EVALSHA`` falling back to ``EVAL``); a lost connection, or a reply
that is not RESP, fails the calls waiting on it, and the next call connects again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import hiredis

__all__ = ["RedisReplyError", "RespClient"]


class RedisReplyError(Exception):
    """Redis answered with an error reply."""


def encode(*args: bytes | str | int | float) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else (
            arg.encode() if isinstance(arg, str) else repr(arg).encode())
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    """One connection. Commands sent in one turn of the loop go out in one write; each
    reply resolves the oldest waiting future. A reply overdue by ``timeout`` fails its
    call with TimeoutError and drops the connection (the replies behind it are stuck too);
    one timer per connection watches the oldest call."""

    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        #: (future, when it was sent), oldest first
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = \
            collections.deque()
        #: hiredis' reply parser (C): an error reply comes out as a RedisReplyError
        self._replies = hiredis.Reader(replyError=RedisReplyError)
        self._out: list[bytes] = []
        self._watch: asyncio.TimerHandle | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = self.loop
        future = loop.create_future()
        now = loop.time()
        self.waiting.append((future, now))
        if not self._out:
            loop.call_soon(self._write)
        self._out.append(command)
        if self._watch is None:
            self._watch = loop.call_at(now + self.timeout, self._expire)
        return future

    def _write(self) -> None:
        if not self.lost:
            self.transport.write(b"".join(self._out))  # type: ignore[union-attr]
        self._out.clear()

    def _expire(self) -> None:
        self._watch = None
        if not self.waiting:
            return
        future, sent = self.waiting[0]
        if sent + self.timeout > self.loop.time():
            self._watch = self.loop.call_at(sent + self.timeout, self._expire)
            return
        if not future.done():
            future.set_exception(TimeoutError(
                f"Redis did not answer within {self.timeout:g} s"))
        self.lost = True  # the next call connects again
        self.transport.abort()  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        replies = self._replies
        try:
            replies.feed(data)
            reply = replies.gets()
            while reply is not False:  # False: no whole reply yet (RESP2 has no booleans)
                future, _ = self.waiting.popleft()
                if not future.done():  # one its caller gave up on is skipped
                    future.set_result(reply)
                reply = replies.gets()
        except hiredis.ProtocolError as exc:  # not Redis: what follows cannot be matched
            self.lost = True
            self.transport.abort()  # type: ignore[union-attr]
            self._fail_waiting(ConnectionError(f"Redis sent a malformed reply: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._fail_waiting(ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def _fail_waiting(self, error: Exception) -> None:
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class RespClient:
    """Commands to the Redis at ``url`` (``redis://[user:password@]host:port/db``, or
    ``rediss://`` for TLS), over one pipelined connection."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"redis url must start with redis:// or rediss://, got {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.strip("/") or 0)
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: _Protocol(self.timeout), self.host, self.port,
            ssl=ssl.create_default_context() if self.tls else None)
        hello: list[tuple[Any, ...]] = []
        if self.password is not None:
            hello.append(("AUTH", self.user, self.password) if self.user
                         else ("AUTH", self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        self._protocol = protocol
        for command in hello:
            reply = await protocol.send(encode(*command))
            if isinstance(reply, RedisReplyError):
                protocol.transport.close()  # type: ignore[union-attr]
                raise reply
        return protocol

    def call(self, *command: Any) -> Awaitable[Any]:
        """The reply to ``command`` (an error reply is returned, not raised); raises
        TimeoutError after ``timeout`` seconds, connecting included, and OSError or
        ConnectionError when Redis cannot be reached."""
        return self.send(encode(*command))

    def send(self, command: bytes) -> Awaitable[Any]:
        """:meth:`call` for a command already encoded (:func:`encode`)."""
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol.send(command)
        return self._connect_and_send(command)

    async def _connect_and_send(self, command: bytes) -> Any:
        async with asyncio.timeout(self.timeout):
            protocol = await self._connection()
        return await protocol.send(command)

    def script(self, source: str) -> _Script:
        return _Script(self, source)

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


class ScriptCall(NamedTuple):
    """One call of a script, encoded (an ``EVALSHA``), to be sent as often as it is made."""

    evalsha: bytes
    keys: Sequence[str]
    args: Sequence[Any]


class _Script:
    """A Lua script called by its SHA, sent whole once when the server does not know it."""

    def __init__(self, client: RespClient, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def prepare(self, keys: Sequence[str], args: Sequence[Any]) -> ScriptCall:
        return ScriptCall(encode("EVALSHA", self.sha, len(keys), *keys, *args), keys, args)

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        return self.run(self.prepare(keys, args))

    async def run(self, call: ScriptCall) -> Any:
        reply = await self.client.send(call.evalsha)
        if isinstance(reply, RedisReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self.client.call("EVAL", self.source, len(call.keys), *call.keys,
                                           *call.args)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply
