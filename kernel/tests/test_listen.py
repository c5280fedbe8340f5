"""The listening socket: bound once (port 0 picks a free one), a port in use is a clear
start-up error, and the gateway serves on a socket bound before it, closing it when it
shuts down."""

import socket

import aiohttp
import pytest
from ferro.config import Duration
from ferro.errors import ConfigError
from ferro.server import GatewayServer, listen
from ferro.testing import as_config


def test_port_zero_is_a_port_the_os_picks():
    with listen("127.0.0.1", 0) as sock:
        assert sock.getsockname()[1] > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)


def test_a_port_in_use_says_what_to_do():
    with listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            listen("127.0.0.1", port)
    assert f"cannot listen on 127.0.0.1:{port}" in caught.value.message
    assert "server.port" in caught.value.message


async def test_the_gateway_serves_on_a_socket_bound_before_it(ferro_app):
    config = as_config({"providers": {"echo": {"type": "echo"}}})
    config.server.shutdown_timeout = Duration(1)
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    async with GatewayServer(ferro_app(config), config.server, 100, sock=sock) as server:
        assert server.port == port
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/health/live") as resp:
            assert resp.status == 200
    assert sock.fileno() == -1  # closed with the server: new connections are refused
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
