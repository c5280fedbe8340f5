"""Slow and greedy clients against the gateway on a real socket, with its own connection
handling and small limits: a connection that sends nothing, a head sent a byte at a time,
a body that stops halfway, and more connections than the limit allows."""

import asyncio
import time

import orjson
import pytest
from ferro import hookimpl, make_plugin_manager
from ferro.server import GatewayServer
from ferro.testing import as_config

ECHO = {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}]}
LIMITS = {"port": 0, "header_timeout": 0.5, "body_timeout": 0.5, "keepalive_timeout": 5,
          "shutdown_timeout": 1}
LIVE = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def served(ferro_app, pm=None, **server):
    config = as_config({**ECHO, "server": {**LIMITS, **server}})
    return GatewayServer(ferro_app(config, pm=pm), config.server, config.server.max_connections)


async def read_until_closed(reader, within):
    """Everything the server sends until it closes the connection (a reset counts), and
    how long that took; fails past ``within`` seconds."""
    started = time.monotonic()
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), within):
            data += chunk
    except ConnectionError:
        pass
    return data, time.monotonic() - started


async def read_response(reader):
    """One response of a kept-alive connection (the body has a Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


def error_of(response):
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert b"content-type: application/json" in head.lower()
    return status, orjson.loads(body)["error"]


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(ferro_app):
    async with served(ferro_app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        data, took = await read_until_closed(reader, within=3)
        writer.close()
    assert data == b""  # closed without a word: it asked for nothing
    assert 0.4 < took < 1.5


@pytest.mark.parametrize("kept_alive", [False, True])
async def test_a_head_sent_a_byte_at_a_time_is_cut_with_a_408(ferro_app, kept_alive):
    async with served(ferro_app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        if kept_alive:  # a first request is answered; the next one dawdles
            writer.write(LIVE)
            head, _ = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200")
        answer = asyncio.ensure_future(read_until_closed(reader, within=3))
        for byte in LIVE[:-4]:  # never the blank line that ends the head
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        data, took = await answer
        writer.close()
    status, error = error_of(data)
    assert (status, error["code"]) == (408, "header_timeout")
    assert 0.4 < took < 1.5


class Exchanges:
    def __init__(self):
        self.seen = []

    @hookimpl
    def exchange_completed(self, exchange):
        self.seen.append(exchange)


async def test_a_body_that_stops_halfway_is_a_408_after_the_body_timeout(ferro_app):
    exchanges = Exchanges()
    pm = make_plugin_manager(env={})
    pm.register(exchanges, name="exchanges")
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    async with served(ferro_app, pm=pm) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        data, took = await read_until_closed(reader, within=3)
        writer.close()
    status, error = error_of(data)
    assert (status, error["type"], error["code"]) == (408, "invalid_request_error",
                                                      "body_timeout")
    assert "server.body_timeout" in error["message"]
    assert 0.4 < took < 1.5  # answered on time, and the connection closed right after
    assert [e.status for e in exchanges.seen] == [408]


async def test_past_the_connection_limit_a_client_is_answered_at_once(ferro_app):
    async with served(ferro_app, max_connections=3, header_timeout=10) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        await asyncio.sleep(0.1)  # the three are open
        for _ in range(2):  # the listener keeps answering, each time at once
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(LIVE)
            data, took = await read_until_closed(reader, within=2)
            writer.close()
            status, error = error_of(data)
            assert (status, error["code"]) == (503, "too_many_connections")
            assert b"\r\nRetry-After: 1\r\n" in data
            assert took < 0.5
        held.pop()[1].close()  # one connection goes away: there is room again
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(LIVE)
        head, body = await read_response(reader)
        writer.close()
        for _, other in held:
            other.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert orjson.loads(body) == {"status": "ok"}
