"""The gateway's own HTTP/1.1 client for upstream calls: kept-alive connections per origin,
one write per request, responses parsed by llhttp (``httptools``).

Upstream calls are the gateway's hot path, and a general-purpose client spends more CPU
per call than the rest of a request's handling. This one does only what an upstream call
needs: ``http`` and ``https`` origins, a JSON (or empty) request body, a response body read
whole or as it arrives (``Content-Length``, chunked or ended by the close; ``gzip`` and
``deflate`` decoded), a time limit on connecting and one on the whole exchange, and an
HTTP proxy where :class:`~ferro.proxies.Proxies` name one (an ``http`` call sent to the
proxy, an ``https`` one through a ``CONNECT`` tunnel). Its
responses have the part of aiohttp's ``ClientResponse`` that providers use (``status``,
``headers``, ``content_type``, ``content_length``, ``read()``, ``text()``, ``json()``,
``release()``, ``close()``, and ``content`` read by ``iter_any()``, ``iter_chunked(n)``,
``read()`` or line by line), so :class:`~ferro.provider.BaseProvider` serves both.

Errors: a refused or failed connection is an ``OSError`` (a :class:`ProxyError` when the
proxy refused the tunnel); a connection that did not open in time is a
:class:`ConnectTimeout`; an exchange past its time limit a ``TimeoutError``;
an upstream that closed the connection before its answer was complete, or sent something
that is not HTTP, a :class:`Disconnected`.

A connection goes back to its origin's pool once its response has been read to the end
(or :meth:`Response.release_when_done` sees the end arrive); a response given up before its
end closes its connection. Idle connections are closed after ``keepalive_timeout``, and one
idle for :data:`CHECK_IDLE_AFTER` is looked at before it is reused: an upstream closes
connections at its own idle timeout, and its close may be waiting unread in the socket.
"""

from __future__ import annotations

import asyncio
import functools
import select
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import httptools
import orjson
from multidict import CIMultiDict

if TYPE_CHECKING:
    from ferro.proxies import Proxies, Proxy

__all__ = ["ConnectTimeout", "Disconnected", "HTTPClient", "HeadTimeout", "ProxyError",
           "Response"]

#: Buffered body bytes past which a connection stops reading until the reader catches up
#: (what a slow reader's stream holds in memory, at most, besides one network read).
HIGH_WATER = 1 << 16
_DEFAULT_PORTS = {"http": 80, "https": 443}
CRLF = "\r\n"
#: What a request target keeps as it is when the rest is percent-encoded.
_URL_SAFE = "/?&=%:@!$'()*+,;~-._"
#: The most a proxy's answer to ``CONNECT`` may hold, in bytes.
MAX_TUNNEL_HEAD = 1 << 16
#: Methods whose requests have no body unless they say so.
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Seconds idle after which a connection's socket is checked before reuse (a system call);
#: a connection reused sooner is taken as it is (upstreams keep connections open for
#: seconds at least).
CHECK_IDLE_AFTER = 1.0


class ConnectTimeout(TimeoutError):
    """The connection to the upstream did not open within the connect limit."""


class HeadTimeout(TimeoutError):
    """The response's head did not arrive within ``limit`` seconds of the call."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"no response within {limit:g}s")
        self.limit = limit


class Disconnected(ConnectionError):
    """The upstream closed the connection, or broke HTTP, before its answer was complete."""


class ProxyError(ConnectionError):
    """The proxy did not open the tunnel to the upstream."""


@functools.lru_cache(maxsize=512)
def _origin(url: str) -> tuple[tuple[str, str, int], str, str]:
    """``((scheme, host, port), request target, Host header)`` of an absolute URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.isascii():  # as a browser sends it: the UTF-8 bytes, percent-encoded
        target = quote(target, safe=_URL_SAFE)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return (scheme, parts.hostname, port), target, host


@functools.lru_cache(maxsize=256)
def _header_block(headers: tuple[tuple[str, str], ...]) -> tuple[str, bool, bool]:
    """The request-head lines of ``headers``, checked for line breaks (which would let a
    value start a header or a request of its own), and whether they set the
    ``Content-Type`` and the ``Accept-Encoding``."""
    lines = []
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid character in the request header {name!r}")
        lines.append(f"{name}: {value}{CRLF}")
    lowered = {name.lower() for name, _ in headers}
    return "".join(lines), "content-type" in lowered, "accept-encoding" in lowered


class HTTPClient:
    """Kept-alive HTTP/1.1 connections to upstreams, pooled per origin (see the module)."""

    #: False sends every upstream call through the providers' aiohttp session instead (the
    #: test kit turns it off while an ``aioresponses`` mock is active, for the mock to see
    #: the calls).
    enabled: ClassVar[bool] = True

    def __init__(self, *, keepalive_timeout: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None,
                 proxies: Proxies | None = None) -> None:
        self.keepalive_timeout = keepalive_timeout
        self._ssl = ssl_context
        self.proxies = proxies
        #: The proxy of each origin called (None: direct).
        self._proxy_of: dict[tuple[str, str, int], Proxy | None] = {}
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self, method: str, url: str, *, body: bytes | None = None,
        headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
        call_headers: Mapping[str, str] | None = None,
        connect_timeout: float | None = None, timeout: float | None = None,
        head_timeout: float | None = None,
    ) -> Response:
        """Send a request; return the response once its head has arrived. ``headers`` are
        the caller's usual ones (their encoding is kept and reused), ``call_headers`` this
        call's own (a trace context). Limits, in seconds from the call (None: none):
        ``connect_timeout`` on opening a connection, ``head_timeout`` on the response's
        head (:class:`HeadTimeout`), ``timeout`` on the whole exchange, body included."""
        origin, target, host = _origin(url)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        block, has_type, has_encoding = _header_block(tuple(headers.items()) if headers else ())
        if call_headers:
            block += _header_block(tuple(call_headers.items()))[0]
        proxy = self._proxy(origin) if self.proxies is not None else None
        if proxy is not None and origin[0] == "http":  # the proxy makes the call
            target = f"http://{host}{target}"
            if proxy.authorization:
                block += f"Proxy-Authorization: {proxy.authorization}{CRLF}"
        if body is not None:
            length = f"Content-Length: {len(body)}{CRLF}"
            if not has_type:
                length = f"Content-Type: application/json{CRLF}{length}"
        else:  # a GET says nothing of a body; another method says it has none
            length = "" if method in _BODILESS else f"Content-Length: 0{CRLF}"
        head = (f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{block}"
                f"{'' if has_encoding else 'Accept-Encoding: gzip, deflate' + CRLF}"
                f"{length}\r\n").encode()  # header values as UTF-8, as aiohttp sends them
        conn = self._reusable(origin)
        head_left = head_timeout
        if conn is None:
            loop = asyncio.get_running_loop()
            opening = loop.time()
            conn = await self._connect(origin, proxy, connect_timeout, timeout, head_timeout)
            spent = loop.time() - opening
            timeout = None if timeout is None else timeout - spent
            head_left = None if head_timeout is None else head_timeout - spent
        try:
            return await conn.send(head, body, timeout, head_left, head_timeout)
        except BaseException:
            conn.close()  # cancelled, timed out or failed: the exchange's state is unknown
            raise

    def _proxy(self, origin: tuple[str, str, int]) -> Proxy | None:
        try:
            return self._proxy_of[origin]
        except KeyError:
            proxy = self._proxy_of[origin] = self.proxies.for_origin(*origin)  # type: ignore[union-attr]
            return proxy

    def _reusable(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        oldest, unchecked = now - self.keepalive_timeout, now - CHECK_IDLE_AFTER
        while idle:
            conn = idle.pop()
            if (conn.idle_since > oldest and not conn.transport.is_closing()
                    and (conn.idle_since > unchecked or conn.quiet())):
                return conn
            conn.close()
        return None

    async def _connect(self, origin: tuple[str, str, int], proxy: Proxy | None,
                       connect: float | None, total: float | None,
                       head: float | None) -> _Connection:
        """A new connection to ``origin`` (through ``proxy``, when given), within the first
        of the call's limits to run out (raising that limit's error)."""
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        limits = [limit for limit in (connect, total, head) if limit is not None]
        timeout = min(limits) if limits else None
        try:
            async with asyncio.timeout(timeout):
                if proxy is not None and tls is not None:
                    conn = await self._tunnel(origin, proxy, tls)
                else:  # to the upstream, or to the proxy that makes an http call
                    to = (host, port) if proxy is None else (proxy.host, proxy.port)
                    _, conn = await loop.create_connection(
                        lambda: _Connection(self, origin), *to, ssl=tls,
                        server_hostname=host if tls else None)
        except TimeoutError:
            if timeout == connect:
                raise ConnectTimeout(f"could not connect to {host}:{port} within "
                                     f"{timeout:g}s") from None
            if timeout == head:
                raise HeadTimeout(timeout) from None
            raise TimeoutError("the upstream did not answer in time") from None
        self._open.add(conn)
        return conn

    async def _tunnel(self, origin: tuple[str, str, int], proxy: Proxy,
                      tls: ssl.SSLContext) -> _Connection:
        """A TLS connection to ``origin`` inside a ``CONNECT`` tunnel through ``proxy``."""
        _, host, port = origin
        loop = asyncio.get_running_loop()
        raw, opener = await loop.create_connection(_TunnelOpener, proxy.host, proxy.port)
        try:
            await opener.open(host, port, proxy)
            conn = _Connection(self, origin)
            conn.connection_made(await loop.start_tls(raw, conn, tls, server_hostname=host))
        except BaseException:
            raw.abort()
            raise
        return conn

    def _idle_again(self, conn: _Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.keepalive_timeout,
                                                                  self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for ``keepalive_timeout``; look again later while
        some are idle."""
        self._sweeper = None
        oldest = time.monotonic() - self.keepalive_timeout
        for idle in self._idle.values():
            for conn in [c for c in idle if c.idle_since <= oldest]:
                conn.close()  # forgotten (taken out of ``idle``) once its transport closes
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(self.keepalive_timeout / 2,
                                                                  self._sweep)

    def _forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        """Close every connection; calls in flight fail with :class:`Disconnected`."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing


class _Connection(asyncio.Protocol):
    """One upstream connection, one exchange at a time."""

    def __init__(self, client: HTTPClient, origin: tuple[str, str, int]) -> None:
        self.client = client
        self.origin = origin
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        #: The connection's loop (looking the running loop up costs a system call per
        #: look on Python 3.11).
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.response: Response | None = None
        self._head: asyncio.Future[Response] | None = None
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self._deadline: asyncio.TimerHandle | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._paused = False

    # --- the exchange ----------------------------------------------------------------------

    def send(self, head: bytes, body: bytes | None, timeout: float | None,
             head_left: float | None, head_timeout: float | None) -> asyncio.Future[Response]:
        """Send a request; ``timeout`` and ``head_left``: the seconds left of the call's
        limits (``head_timeout``: the limit on its head, as its error names it)."""
        loop = self.loop
        self._head = loop.create_future()
        self.response = None
        if timeout is not None:
            self._deadline = loop.call_later(timeout, self._expire)
        if head_left is not None:
            self._head_timer = loop.call_later(head_left, self._head_late, head_timeout)
        if body is not None and len(body) <= 65536:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            if body:
                self.transport.write(body)
        return self._head

    def quiet(self) -> bool:
        """Whether the upstream has sent nothing, not even its close, since the last
        exchange ended (anything it sent now is unasked for: the connection is done)."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    def done(self) -> None:
        """The response was read to its end: the connection is free for another exchange."""
        self._stop_clock()
        self.response = None
        self.client._idle_again(self)

    def close(self, exc: BaseException | None = None) -> None:
        self._stop_clock()
        self._fail(exc or Disconnected("the connection was closed"))
        self.transport.abort()

    def _expire(self) -> None:
        self._deadline = None
        self.close(TimeoutError("the upstream did not answer in time"))

    def _head_late(self, limit: float) -> None:
        self._head_timer = None
        self.close(HeadTimeout(limit))

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _fail(self, exc: BaseException) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_exception(exc)
        elif self.response is not None:
            self.response.content.set_exception(exc)

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close(Disconnected(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._forget(self)
        self._stop_clock()
        resp = self.response
        if resp is not None and resp.until_close and not resp.content.ended:
            resp.content.feed_eof()  # a body without a length ends with the connection
            return
        self._fail(Disconnected("the upstream closed the connection before its answer "
                                "was complete"))

    def pause_writing(self) -> None:  # request bodies are bounded; the kernel buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # --- reading, as the body is consumed --------------------------------------------------

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    # --- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        self._values.append(value)

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        names, values = self._names, self._values
        self._names, self._values = [], []
        if status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            return
        self._stop_head_timer()
        headers = CIMultiDict(zip([n.decode("latin-1") for n in names],
                                  [v.decode("latin-1") for v in values], strict=True))
        try:
            decoder = _decoder(headers.get("Content-Encoding", ""))
        except Disconnected as exc:
            self.close(exc)
            return
        resp = self.response = Response(self, status, headers, decoder)
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(resp)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.content.feed(body)

    def on_message_complete(self) -> None:
        resp = self.response
        if resp is None:
            return
        if not self.parser.should_keep_alive():
            resp.reuse = False
        resp.content.feed_eof()


class _TunnelOpener(asyncio.Protocol):
    """A connection to a proxy until the proxy has answered its ``CONNECT``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.head = b""
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def open(self, host: str, port: int, proxy: Proxy) -> None:
        """Ask the proxy for a tunnel to ``host``:``port``; raises ProxyError when it does
        not open one."""
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        auth = f"Proxy-Authorization: {proxy.authorization}{CRLF}" if proxy.authorization else ""
        self.transport.write(f"CONNECT {where} HTTP/1.1{CRLF}Host: {where}{CRLF}{auth}{CRLF}"
                             .encode())
        await self.answered
        status_line, _, rest = self.head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProxyError(f"the proxy at {proxy.host}:{proxy.port} did not answer CONNECT "
                             f"in HTTP: {status_line[:100]!r}")
        if not 200 <= int(parts[1]) < 300:
            raise ProxyError(f"the proxy at {proxy.host}:{proxy.port} refused the tunnel to "
                             f"{where}: {status_line[9:].decode('latin-1')[:100]}")
        if not rest.endswith(b"\r\n\r\n") and rest != b"\r\n":
            raise ProxyError(f"the proxy at {proxy.host}:{proxy.port} sent data before the "
                             "tunnel was open")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.head += data
        if self.answered.done():
            return
        if b"\r\n\r\n" in self.head:
            self.answered.set_result(None)
        elif len(self.head) > MAX_TUNNEL_HEAD:
            self.answered.set_exception(ProxyError("the proxy's answer to CONNECT is too long"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(ProxyError("the proxy closed the connection before "
                                                   "answering CONNECT"))


class Body:
    """A response body as it arrives (aiohttp's ``StreamReader`` in the part providers use)."""

    __slots__ = ("_chunks", "_conn", "_decoder", "_exc", "_size", "_waiter", "ended",
                 "on_end", "total_bytes")

    def __init__(self, conn: _Connection, decoder: Any) -> None:
        self._conn = conn
        #: Called once the last byte has arrived, then forgotten. (The body holds no
        #: reference to its response otherwise: no cycle for the garbage collector to find,
        #: once per request.)
        self.on_end: Callable[[], None] | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._exc: BaseException | None = None
        self.ended = False
        #: Bytes received so far (before decoding).
        self.total_bytes = 0
        self._decoder = decoder

    def feed(self, data: bytes) -> None:
        self.total_bytes += len(data)
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._conn.close(Disconnected(f"the upstream's body does not decode: {exc}"))
                return
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._conn.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
        self.ended = True
        self._wake()
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end()

    def set_exception(self, exc: BaseException) -> None:
        if not self.ended and self._exc is None:
            self._exc = exc
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def at_eof(self) -> bool:
        return self.ended and not self._chunks

    async def _more(self) -> bool:
        """Wait for data; False at the end of the body."""
        while not self._chunks:
            if self._exc is not None:
                raise self._exc
            if self.ended:
                return False
            self._waiter = self._conn.loop.create_future()
            await self._waiter
        return True

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._conn.resume_reading()
        return data

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each piece of the body as it arrives (everything buffered at once)."""
        while await self._more():
            yield self._take()

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of ``size`` bytes (the last one may be shorter)."""
        rest = b""
        async for piece in self.iter_any():
            rest += piece
            while len(rest) >= size:
                yield rest[:size]
                rest = rest[size:]
        if rest:
            yield rest

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Each line of the body, with its ``\\n`` (the last may lack it)."""
        rest = b""
        async for piece in self.iter_any():
            rest += piece
            *lines, rest = rest.split(b"\n")
            for line in lines:
                yield line + b"\n"
        if rest:
            yield rest

    async def read(self) -> bytes:
        """The rest of the body."""
        if self.ended and self._exc is None:  # all here already (a small answer's usual case)
            return self._take() if self._chunks else b""
        parts = []
        while await self._more():
            parts.append(self._take())
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return None


def _decoder(content_encoding: str) -> Any:
    """A zlib decompressor for the body's ``Content-Encoding``, or None for none."""
    encoding = content_encoding.strip().lower()
    if not encoding or encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()  # zlib-wrapped, as HTTP defines it
    raise Disconnected(f"the upstream sent a body in an unsupported encoding: {encoding}")


class Response:
    """An upstream's response: its status and headers, and its body as it arrives."""

    __slots__ = ("_conn", "content", "content_length", "content_type", "headers", "reuse",
                 "status", "until_close")

    def __init__(self, conn: _Connection, status: int, headers: CIMultiDict[str],
                 decoder: Any) -> None:
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        ctype = headers.get("Content-Type", "")
        self.content_type = ctype.partition(";")[0].strip().lower() or "application/octet-stream"
        self.until_close = (self.content_length is None
                            and "chunked" not in headers.get("Transfer-Encoding", "").lower())
        self.reuse = not self.until_close
        self.content = Body(conn, decoder)

    def read(self) -> Awaitable[bytes]:
        """The whole body."""
        return self.content.read()

    async def text(self, encoding: str | None = None) -> str:
        """The whole body decoded (by default with the ``charset`` it names, else UTF-8)."""
        charset = encoding or _charset(self.headers.get("Content-Type", "")) or "utf-8"
        return (await self.read()).decode(charset, "replace")

    async def json(self) -> Any:
        """The whole body's JSON."""
        return orjson.loads(await self.read())

    def release(self) -> None:
        """Done with the response: its connection is reused when the body has ended, else
        closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self.content.on_end = None
        if self.content.ended and self.reuse:
            conn.done()
        else:
            conn.close()

    def release_when_done(self, seconds: float) -> None:
        """Release the connection once the body's end (usually only the chunked encoding's
        last chunk) has arrived; close it if that takes more than ``seconds``."""
        if self.content.ended or self._conn is None:
            self.release()
            return
        self.content.on_end = self.release
        conn = self._conn
        conn._stop_clock()
        conn._deadline = conn.loop.call_later(seconds, self.close)

    def close(self) -> None:
        """Close the connection; a read in progress fails with :class:`Disconnected`."""
        conn, self._conn = self._conn, None
        self.content.on_end = None
        if conn is not None:
            conn.close()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
