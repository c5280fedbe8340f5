"""The gateway's upstream HTTP client (ferro.http_client) against raw loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from ferro import http_client
from ferro.http_client import (
    HIGH_WATER,
    Body,
    ConnectTimeout,
    Disconnected,
    HeadTimeout,
    HTTPClient,
    Response,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A loopback server running ``handler`` per connection, counting connections and
    recording each request head."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer)
        writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request's head and body; records the head."""
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        return await reader.readexactly(length)


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer(handler)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(server)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return raw

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    http = HTTPClient()
    yield http
    await http.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def keep_answering(*replies: bytes, close: bool = False) -> Callable[[RawServer], Handler]:
    """A handler answering each request on a connection with the next of ``replies``."""

    def make(raw_of: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for reply in replies:
                await raw_of.read_request(reader)
                writer.write(reply)
                await writer.drain()
            if not close:
                await reader.read()  # hold the connection until the client closes it

        return handler

    return make


def sends(data: bytes, *, hold: bool = True) -> Handler:
    """A handler answering a connection's first request head with ``data``, then holding
    the connection until the client closes it (or, without ``hold``, closing it)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
        if hold:
            await reader.read()

    return handler


async def served(raw_server, make: Callable[[RawServer], Handler]) -> RawServer:
    holder: list[RawServer] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await make(holder[0])(reader, writer)

    holder.append(await raw_server(handler))
    return holder[0]


async def test_one_kept_alive_connection_serves_calls_one_after_another(raw_server, client):
    raw = await served(raw_server, keep_answering(*[answer(b'{"n":%d}' % i) for i in range(3)]))
    bodies = []
    for _ in range(3):
        async with await client.request("POST", raw.url + "/v1/x", body=b"{}") as resp:
            bodies.append((resp.status, await resp.read()))
    assert bodies == [(200, b'{"n":0}'), (200, b'{"n":1}'), (200, b'{"n":2}')]
    assert raw.connections == 1


async def test_the_request_head_carries_host_headers_length_and_the_query(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"ok")))
    resp = await client.request("POST", raw.url + "/v1/chat?x=1", body=b'{"a":1}',
                                headers={"Authorization": "Bearer k"}, params={"alt": "sse"},
                                call_headers={"traceparent": "00-abc-def-01"})
    await resp.read()
    resp.release()
    head = raw.heads[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1/chat?x=1&alt=sse HTTP/1.1"
    assert f"Host: {raw.url.removeprefix('http://')}" in lines
    for line in ("Authorization: Bearer k", "traceparent: 00-abc-def-01",
                 "Content-Type: application/json", "Content-Length: 7",
                 "Accept-Encoding: gzip, deflate"):
        assert line in lines


async def test_a_get_says_nothing_of_a_body(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"[]")))
    async with await client.request("GET", raw.url + "/v1/models") as resp:
        await resp.read()
    assert b"content-length" not in raw.heads[0].lower()
    assert b"content-type" not in raw.heads[0].lower()


async def test_https_with_the_servers_certificate_checked(tmp_path):
    authority = trustme.CA()
    served_tls = authority.issue_cert("127.0.0.1", "localhost").configure_cert
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served_tls(server_side)
    heads = []

    async def handler(reader, writer):
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(answer(b"secure"))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_side)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}/v1/x"
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    http = HTTPClient(ssl_context=trusting)
    try:
        for _ in range(2):
            async with await http.request("GET", url) as resp:
                assert (resp.status, await resp.read()) == (200, b"secure")
        assert len(heads) == 2 and heads[0].startswith(b"GET /v1/x HTTP/1.1\r\nHost: localhost:")
        assert len(http._open) == 1, "both calls on one connection"
        with pytest.raises(ssl.SSLCertVerificationError):
            await HTTPClient().request("GET", url)  # the system's roots do not know this CA
    finally:
        await http.close()
        server.close()


async def test_a_path_and_a_header_beyond_ascii_go_out_encoded(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"ok")))
    async with await client.request("GET", raw.url + "/v1/models/mod\u00e8le?q=\u00e9",
                                    headers={"X-Note": "caf\u00e9"}) as resp:
        await resp.read()
    lines = raw.heads[0].split(b"\r\n")
    assert lines[0] == b"GET /v1/models/mod%C3%A8le?q=%C3%A9 HTTP/1.1"
    assert "X-Note: café".encode() in lines


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"ok")))
    with pytest.raises(ValueError, match="invalid character"):
        await client.request("GET", raw.url + "/", headers={"X-A": "v\r\nInjected: 1"})
    assert raw.heads == []


async def test_headers_are_case_insensitive_and_content_type_is_parsed(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(
        b"{}", "content-type: Application/JSON; charset=utf-8", "Retry-After: 3",
        "X-Ratelimit-Remaining: 9")))
    async with await client.request("GET", raw.url + "/") as resp:
        assert resp.headers["retry-after"] == "3"
        assert resp.headers.get("X-RateLimit-Remaining") == "9"
        assert (resp.content_type, resp.content_length) == ("application/json", 2)
        assert await resp.read() == b"{}"


async def test_a_chunked_body_arrives_piece_by_piece(raw_server, client):
    gate = asyncio.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: text/event-stream\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await gate.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    raw = await raw_server(handler)
    async with await client.request("POST", raw.url + "/s", body=b"{}") as resp:
        assert resp.content_type == "text/event-stream"
        pieces = []
        async for piece in resp.content.iter_any():
            pieces.append(piece)
            gate.set()
        assert pieces == [b"first", b"second"]
        assert resp.content.at_eof() and resp.content.total_bytes == 11


async def test_a_body_read_as_aiohttp_code_reads_it(raw_server, client):
    ndjson = b'{"n":1}\n{"n":2}\n{"n":3}'
    raw = await served(raw_server, keep_answering(*[answer(
        ndjson, "Content-Type: application/x-ndjson; charset=latin-1")] * 3,
        answer(b'{"caf\xc3\xa9":true}', "Content-Type: application/json")))
    async with await client.request("GET", raw.url + "/") as resp:
        assert [line async for line in resp.content] == [b'{"n":1}\n', b'{"n":2}\n',
                                                          b'{"n":3}']
    async with await client.request("GET", raw.url + "/") as resp:
        assert [piece async for piece in resp.content.iter_chunked(10)] == [
            ndjson[:10], ndjson[10:20], ndjson[20:]]
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.text() == ndjson.decode("latin-1")
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.json() == {"café": True}


async def test_a_body_without_a_length_ends_with_the_connection(raw_server, client):
    raw = await raw_server(sends(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
                                 hold=False))
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.read() == b"all of it"


@pytest.mark.parametrize("encoding, encode", [
    ("gzip", gzip.compress), ("deflate", zlib.compress)])
async def test_gzip_and_deflate_bodies_are_decoded(raw_server, client, encoding, encode):
    raw = await served(raw_server, keep_answering(answer(
        encode(b'{"ok":true}' * 50), f"Content-Encoding: {encoding}")))
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.read() == b'{"ok":true}' * 50


async def test_an_unknown_encoding_is_an_error_not_garbage(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"xx", "Content-Encoding: zstd")))
    with pytest.raises(Disconnected, match="unsupported encoding"):
        await client.request("GET", raw.url + "/")


async def test_an_interim_100_continue_is_skipped(raw_server, client):
    raw = await served(raw_server, keep_answering(
        b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done")))
    async with await client.request("POST", raw.url + "/", body=b"{}") as resp:
        assert (resp.status, await resp.read()) == (200, b"done")


async def test_connection_close_is_not_reused(raw_server, client):
    raw = await served(raw_server, keep_answering(answer(b"a", "Connection: close"),
                                                  close=True))
    for _ in range(2):
        async with await client.request("GET", raw.url + "/") as resp:
            assert await resp.read() == b"a"
    assert raw.connections == 2


async def test_an_upstream_closing_mid_body_is_a_disconnect(raw_server, client):
    raw = await raw_server(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
                                 hold=False))
    resp = await client.request("GET", raw.url + "/")
    with pytest.raises(Disconnected):
        await resp.read()
    resp.release()


async def test_an_upstream_closing_before_answering_is_a_disconnect(raw_server, client):
    raw = await raw_server(sends(b"", hold=False))
    with pytest.raises(Disconnected):
        await client.request("GET", raw.url + "/")


async def test_garbage_instead_of_http_is_a_disconnect(raw_server, client):
    raw = await raw_server(sends(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(Disconnected, match="invalid HTTP response"):
        await client.request("GET", raw.url + "/")


async def test_the_total_limit_covers_the_body_and_frees_nothing_broken(raw_server, client):
    raw = await raw_server(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"))
    resp = await client.request("GET", raw.url + "/", timeout=0.1)
    with pytest.raises(TimeoutError):
        await resp.read()
    resp.release()
    assert client._idle.get(("http", "127.0.0.1", int(raw.url.rsplit(":", 1)[1])), []) == []


async def test_a_head_that_does_not_come_in_time_is_a_head_timeout(raw_server, client):
    raw = await raw_server(sends(b""))  # reads the request, never answers
    with pytest.raises(HeadTimeout) as caught:
        await client.request("POST", raw.url + "/", body=b"{}", head_timeout=0.1)
    assert caught.value.limit == 0.1


async def test_a_head_in_time_lifts_the_head_limit_for_a_slow_body(raw_server, client):
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(0.3)  # past the head limit: the body may take longer
        writer.write(b"cd")
        await writer.drain()
        await reader.read()

    raw = await raw_server(handler)
    async with await client.request("GET", raw.url + "/", head_timeout=0.1) as resp:
        assert await resp.read() == b"abcd"


async def test_a_slow_connection_counts_against_the_head_limit(client, monkeypatch):
    loop = asyncio.get_running_loop()

    async def never(*args, **kwargs):
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    with pytest.raises(HeadTimeout):
        await client.request("GET", "http://127.0.0.1:9/", connect_timeout=5, head_timeout=0.05)


async def test_a_connection_that_does_not_open_in_time_is_a_connect_timeout(client,
                                                                           monkeypatch):
    loop = asyncio.get_running_loop()

    async def never(*args, **kwargs):
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    with pytest.raises(ConnectTimeout, match=r"within 0\.05s"):
        await client.request("GET", "http://127.0.0.1:9/", connect_timeout=0.05)


async def test_a_refused_connection_is_an_oserror(client, unused_tcp_port):
    with pytest.raises(OSError):
        await client.request("GET", f"http://127.0.0.1:{unused_tcp_port}/")


async def test_a_cancelled_call_closes_its_connection_and_the_next_call_works(raw_server,
                                                                             client):
    answered = asyncio.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if not answered.is_set():
            answered.set()
            await reader.read()  # never answers the first call
            return
        writer.write(answer(b"second"))
        await writer.drain()
        await reader.read()

    raw = await raw_server(handler)
    call = asyncio.ensure_future(client.request("GET", raw.url + "/"))
    await answered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.read() == b"second"
    assert raw.connections == 2


async def test_a_response_given_up_before_its_end_closes_its_connection(raw_server, client):
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        sent = 10 if raw.connections == 1 else 1000
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * sent)
        await writer.drain()
        await reader.read()

    raw = await raw_server(handler)
    resp = await client.request("GET", raw.url + "/")
    resp.release()  # 990 bytes still to come: the connection cannot serve another call
    async with await client.request("GET", raw.url + "/") as resp:
        assert len(await resp.read()) == 1000
    assert raw.connections == 2


async def test_release_when_done_waits_for_the_last_chunk_then_reuses(raw_server, client):
    last = asyncio.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n")
        await writer.drain()
        await last.wait()
        writer.write(b"0\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"again"))
        await writer.drain()
        await reader.read()

    raw = await raw_server(handler)
    resp = await client.request("GET", raw.url + "/")
    assert await anext(resp.content.iter_any()) == b"data"
    resp.release_when_done(5)
    last.set()
    await asyncio.sleep(0.05)
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.read() == b"again"
    assert raw.connections == 1


async def test_a_finished_call_leaves_no_reference_cycle(raw_server, client):
    """What a call made is freed as soon as its caller lets go, without the garbage
    collector: a cycle a call would make the collector run every few requests under load,
    each time walking the objects of every request in flight."""
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n0\r\n\r\n"
    raw = await served(raw_server, keep_answering(answer(b"one"), chunked))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        async with await client.request("POST", raw.url + "/", body=b"{}") as resp:
            assert await resp.read() == b"one"
        resp = await client.request("GET", raw.url + "/")
        assert [line async for line in resp.content] == [b"data"]
        resp.release_when_done(5)
        del resp
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, Response | Body)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
    assert raw.connections == 1


async def test_idle_connections_are_closed_after_the_keepalive_timeout(raw_server):
    closed = asyncio.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"ok"))
        await writer.drain()
        await reader.read()  # returns when the client closes
        closed.set()

    raw = await raw_server(handler)
    http = HTTPClient(keepalive_timeout=0.05)
    try:
        async with await http.request("GET", raw.url + "/") as resp:
            await resp.read()
        await asyncio.wait_for(closed.wait(), 2)
        assert not any(http._idle.values())
    finally:
        await http.close()


class ClosingWhileIdle:
    """An upstream in a thread that answers one request per connection, then closes the
    connection when told to, as a server does at its idle timeout (in a thread, so that the
    test's event loop can be kept from reading the close)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.close_now = threading.Event()
        self.closed = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(5)
        with self.listener, contextlib.suppress(TimeoutError):
            for _ in range(2):
                sock, _ = self.listener.accept()
                self.connections += 1
                with sock:
                    data = b""
                    while not data.endswith(b"\r\n\r\n{}"):
                        data += sock.recv(4096)
                    sock.sendall(answer(b"ok"))
                    self.close_now.wait(5)
                self.closed.set()


@pytest.mark.parametrize("idle_check", [True, False])
async def test_a_connection_the_upstream_closed_while_idle_is_not_reused(client, monkeypatch,
                                                                         idle_check):
    upstream = ClosingWhileIdle()
    async with await client.request("POST", upstream.url + "/", body=b"{}") as resp:
        assert await resp.read() == b"ok"
    # The upstream closes the idle connection; the loop does not run until the next call.
    upstream.close_now.set()
    assert upstream.closed.wait(5)
    time.sleep(0.1)
    monkeypatch.setattr(http_client, "CHECK_IDLE_AFTER", 0.05 if idle_check else 60)
    if idle_check:
        async with await client.request("POST", upstream.url + "/", body=b"{}") as resp:
            assert await resp.read() == b"ok"
        assert upstream.connections == 2
    else:  # what the check spares: the call goes out on the closed connection, and fails
        with pytest.raises(Disconnected):
            await client.request("POST", upstream.url + "/", body=b"{}")
        assert upstream.connections == 1


async def test_a_large_body_is_read_whole_through_flow_control(raw_server, client):
    big = b"z" * (3 << 20)
    raw = await served(raw_server, keep_answering(answer(big)))
    async with await client.request("GET", raw.url + "/") as resp:
        assert await resp.read() == big


async def test_a_slow_reader_holds_a_bounded_part_of_a_fast_body(raw_server, client):
    big = b"z" * (8 << 20)
    raw = await raw_server(sends(answer(big)))
    async with await client.request("GET", raw.url + "/") as resp:
        first = await anext(resp.content.iter_any())
        await asyncio.sleep(0.2)  # the upstream keeps sending meanwhile
        assert resp.content._size <= HIGH_WATER + (256 << 10), "one network read past it"
        rest = await resp.read()
    assert len(first) + len(rest) == len(big)


async def test_closing_the_client_fails_calls_in_flight(raw_server):
    raw = await raw_server(sends(b""))
    http = HTTPClient()
    call = asyncio.ensure_future(http.request("GET", raw.url + "/"))
    await asyncio.sleep(0.05)
    await http.close()
    with pytest.raises(Disconnected):
        await call
    with pytest.raises(RuntimeError, match="closed"):
        await http.request("GET", raw.url + "/")
