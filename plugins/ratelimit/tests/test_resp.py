"""The pipelined Redis client: replies matched to commands in order, partial reads, error
replies, a script the server does not know yet, timeouts, and a lost connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from ferro.testing import REDIS_URL, needs_redis
from ferro_ratelimit.resp import RedisReplyError, RespClient, encode


def test_commands_are_encoded_as_resp_arrays_of_bulk_strings() -> None:
    assert encode("GET", b"k", 3, 0.5) == b"*4\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\n3\r\n$3\r\n0.5\r\n"


class Replies(asyncio.Protocol):
    """Answers the first command with ``data``, cut in pieces of ``size`` bytes."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, _: bytes) -> None:
        self.answering = asyncio.ensure_future(self.answer())

    async def answer(self) -> None:
        for at in range(0, len(self.data), self.size):
            self.transport.write(self.data[at:at + self.size])
            await asyncio.sleep(0.001)


@pytest.mark.parametrize("size", [1, 3, 100])
async def test_replies_arriving_in_pieces_answer_their_commands_in_order(size: int) -> None:
    data = b"*3\r\n:1\r\n$3\r\nabc\r\n$-1\r\n+OK\r\n-ERR bad\r\n"
    server = await asyncio.get_running_loop().create_server(
        lambda: Replies(data, size), "127.0.0.1", 0)
    client = RespClient(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1.0)
    try:
        array, ok, error = await asyncio.gather(*(client.call("PING") for _ in range(3)))
    finally:
        await client.aclose()
        server.close()
    assert array == [1, b"abc", None] and ok == b"OK"
    assert isinstance(error, RedisReplyError) and str(error) == "ERR bad"


async def test_a_reply_that_is_not_resp_fails_its_call_and_the_connection() -> None:
    server = await asyncio.get_running_loop().create_server(
        lambda: Replies(b"HTTP/1.1 400 Bad Request\r\n\r\n", 100), "127.0.0.1", 0)
    client = RespClient(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1.0)
    try:
        with pytest.raises(ConnectionError, match="malformed"):
            await client.call("PING")
        assert client._protocol.lost
    finally:
        await client.aclose()
        server.close()


class FakeRedis:
    """Answers each command with ``+PONG``, split in two writes, after ``delay``; the first
    connection is closed after ``close_after`` commands."""

    def __init__(self, delay: float = 0.0, close_after: int | None = None) -> None:
        self.delay, self.close_after, self.connections = delay, close_after, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            for _ in range(int(line[1:]) * 2):
                await reader.readline()
            if self.close_after is not None and self.connections == 1 \
                    and served == self.close_after:
                writer.close()
                return
            await asyncio.sleep(self.delay)
            writer.write(b"+PO")
            await writer.drain()
            writer.write(b"NG\r\n")
            served += 1


@contextlib.asynccontextmanager
async def client_of(fake: FakeRedis, timeout: float) -> AsyncIterator[RespClient]:
    """A client of ``fake`` served on a free port; both are closed afterwards."""
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = RespClient(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0", timeout)
    try:
        yield client
    finally:
        await client.aclose()
        server.close()


async def test_a_call_that_times_out_does_not_take_the_next_ones_reply() -> None:
    async with client_of(FakeRedis(delay=0.1), timeout=0.05) as client:
        with pytest.raises(TimeoutError):
            await client.call("PING")
        client.timeout = 1.0
        assert await client.call("PING") == b"PONG"
        assert await asyncio.gather(*(client.call("PING") for _ in range(5))) == [b"PONG"] * 5


async def test_the_calls_of_one_loop_turn_go_out_in_one_write() -> None:
    async with client_of(FakeRedis(), timeout=1.0) as client:
        assert await client.call("PING") == b"PONG"
        transport = client._protocol.transport
        writes = []
        write = transport.write
        transport.write = lambda data: (writes.append(data), write(data))[1]
        assert await asyncio.gather(*(client.call("PING") for _ in range(5))) == [b"PONG"] * 5
        assert writes == [encode("PING") * 5]


async def test_a_timeout_fails_every_call_behind_it_and_the_next_call_reconnects() -> None:
    fake = FakeRedis(delay=0.3)
    async with client_of(fake, timeout=0.1) as client:
        results = await asyncio.gather(*(client.call("PING") for _ in range(3)),
                                       return_exceptions=True)
        assert results[0].__class__ is TimeoutError
        assert all(isinstance(r, TimeoutError | ConnectionError) for r in results)
        client.timeout = 1.0
        assert await client.call("PING") == b"PONG" and fake.connections == 2


async def test_a_lost_connection_fails_its_calls_and_the_next_call_reconnects() -> None:
    fake = FakeRedis(close_after=1)
    async with client_of(fake, timeout=1.0) as client:
        assert await client.call("PING") == b"PONG"
        with pytest.raises(ConnectionError):
            await client.call("PING")
        assert await client.call("PING") == b"PONG" and fake.connections == 2


async def test_nothing_listening_is_an_os_error(unused_tcp_port: int) -> None:
    client = RespClient(f"redis://127.0.0.1:{unused_tcp_port}", timeout=1.0)
    with pytest.raises(OSError):
        await client.call("PING")


def test_only_redis_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="redis://"):
        RespClient("http://127.0.0.1:6379", 1.0)
    client = RespClient("rediss://u:p%40ss@cache.example:6380/3", 1.0)
    assert (client.host, client.port, client.tls, client.user, client.password, client.db) == (
        "cache.example", 6380, True, "u", "p@ss", 3)


@needs_redis
async def test_a_script_unknown_to_the_server_is_sent_whole_then_called_by_sha() -> None:
    client = RespClient(REDIS_URL, timeout=1.0)
    assert await client.call("SCRIPT", "FLUSH") == b"OK"
    script = client.script("return {KEYS[1], ARGV[1]}")
    assert await script(keys=["ferro-test:resp"], args=[7]) == [b"ferro-test:resp", b"7"]
    assert await client.call("SCRIPT", "EXISTS", script.sha) == [1]
    assert await script(keys=["k"], args=["x"]) == [b"k", b"x"]
    with pytest.raises(RedisReplyError):
        await client.script("return redis.call('NOPE')")(keys=[], args=[])
    await client.aclose()
