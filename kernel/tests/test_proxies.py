"""Outbound proxies: read from the environment (ferro.proxies), and used by the upstream
client against a loopback proxy: an ``http`` call sent to it in absolute form, an ``https``
one through a ``CONNECT`` tunnel."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl

import pytest
import trustme
from ferro import ConfigError
from ferro.http_client import HTTPClient, ProxyError
from ferro.proxies import Proxies, Proxy

# --- the environment --------------------------------------------------------------------------


def test_no_proxy_variable_means_no_proxies():
    assert Proxies.from_env({"NO_PROXY": "example.com"}) is None
    assert Proxies.from_env({"HTTPS_PROXY": "  "}) is None


def test_each_scheme_has_its_variable_and_lowercase_wins():
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://upper:3128", "https_proxy": "lower:8080",
                                "HTTP_PROXY": "http://plain.example"})
    assert proxies.for_origin("https", "api.openai.com", 443) == Proxy("lower", 8080)
    assert proxies.for_origin("http", "api.openai.com", 80) == Proxy("plain.example", 80)
    only_https = Proxies.from_env({"HTTPS_PROXY": "http://p:3128"})
    assert only_https.for_origin("http", "api.openai.com", 80) is None


def test_credentials_in_the_url_become_proxy_authorization():
    proxy = Proxies.from_env({"HTTPS_PROXY": "http://us%40er:p%3Ass@p:3128"}).for_origin(
        "https", "api.openai.com", 443)
    assert proxy.authorization == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert "p:ss" not in repr(proxy)


@pytest.mark.parametrize("value", ["https://p:3128", "socks5://p:1080", "http://p:port",
                                   "http://:3128"])
def test_a_value_that_is_not_an_http_proxy_url_is_a_config_error(value):
    with pytest.raises(ConfigError, match="HTTPS_PROXY is not an http:// proxy URL"):
        Proxies.from_env({"HTTPS_PROXY": value})


def test_a_refused_url_is_quoted_without_its_password():
    with pytest.raises(ConfigError) as refused:
        Proxies.from_env({"HTTP_PROXY": "socks5://user:hunter2@p:1080"})
    assert "hunter2" not in refused.value.message and "user:***@p" in refused.value.message


@pytest.mark.parametrize(("no_proxy", "host", "port", "direct"), [
    ("example.com", "example.com", 443, True),
    ("example.com", "api.example.com", 443, True),
    (".example.com", "api.example.com", 443, True),
    ("*.example.com", "api.example.com", 443, True),
    ("example.com", "notexample.com", 443, False),
    ("example.com:8443", "example.com", 443, False),
    ("example.com:8443", "example.com", 8443, True),
    ("10.0.0.0/8, 192.168.1.5", "10.20.30.40", 443, True),
    ("10.0.0.0/8 192.168.1.5", "192.168.1.5", 443, True),
    ("10.0.0.0/8", "11.0.0.1", 443, False),
    ("fd00::/8", "fd12::1", 443, True),
    ("[fd12::1]:443", "fd12::1", 443, True),
    ("*", "api.openai.com", 443, True),
    ("", "API.Example.COM.", 443, False),
    ("", "localhost", 11434, True),
    ("", "127.0.0.2", 11434, True),
    ("", "::1", 11434, True),
])
def test_no_proxy_and_loopback_hosts_are_reached_directly(no_proxy, host, port, direct):
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": no_proxy})
    assert (proxies.for_origin("https", host, port) is None) == direct


# --- the client through a proxy ---------------------------------------------------------------

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class LoopbackProxy:
    """A proxy on loopback: it answers ``http`` calls itself (recording each request head)
    and opens ``CONNECT`` tunnels to ``tunnel_to`` (whatever host was asked for), refusing
    requests without ``authorization`` when one is required."""

    def __init__(self, tunnel_to: int = 0, authorization: str | None = None) -> None:
        self.tunnel_to = tunnel_to
        self.authorization = authorization
        self.heads: list[bytes] = []
        self.url = ""

    async def start(self) -> LoopbackProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    def proxies(self, credentials: str = "") -> Proxies:
        url = self.url.replace("http://", f"http://{credentials}@" if credentials else "http://")
        return Proxies.from_env({"HTTP_PROXY": url, "HTTPS_PROXY": url})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                if self.authorization and (f"Proxy-Authorization: {self.authorization}"
                                           .encode() not in head):
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                    await writer.drain()
                    break
                if head.startswith(b"CONNECT "):
                    await self._tunnel(reader, writer)
                    break
                writer.write(ANSWER)
                await writer.drain()
        writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.tunnel_to)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        self.server.close()


@pytest.fixture
async def tls_upstream():
    """A TLS server for ``upstream.test`` on loopback answering every request with ok, and
    a client context trusting its certificate; the heads it received."""
    authority = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("upstream.test").configure_cert(server_side)
    heads: list[bytes] = []

    async def handler(reader, writer):
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(ANSWER)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_side)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    yield server.sockets[0].getsockname()[1], trusting, heads
    server.close()


async def test_an_http_call_goes_to_the_proxy_in_absolute_form():
    proxy = await LoopbackProxy().start()
    http = HTTPClient(proxies=proxy.proxies("user:secret"))
    try:
        for _ in range(2):
            async with await http.request("POST", "http://upstream.test:8000/v1/x?a=1",
                                          body=b"{}") as resp:
                assert (resp.status, await resp.read()) == (200, b"ok")
    finally:
        await http.close()
        await proxy.close()
    assert len(proxy.heads) == 2, "both calls on one kept-alive connection"
    request_line, *headers = proxy.heads[0].decode().split("\r\n")
    assert request_line == "POST http://upstream.test:8000/v1/x?a=1 HTTP/1.1"
    assert "Host: upstream.test:8000" in headers
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'user:secret').decode()}" in headers


async def test_an_https_call_goes_through_a_connect_tunnel(tls_upstream):
    port, trusting, heads = tls_upstream
    auth = "Basic " + base64.b64encode(b"user:secret").decode()
    proxy = await LoopbackProxy(tunnel_to=port, authorization=auth).start()
    http = HTTPClient(ssl_context=trusting, proxies=proxy.proxies("user:secret"))
    try:
        for _ in range(2):
            async with await http.request("GET", "https://upstream.test/v1/models") as resp:
                assert (resp.status, await resp.read()) == (200, b"ok")
    finally:
        await http.close()
        await proxy.close()
    assert [h.split(b"\r\n")[0] for h in proxy.heads] == [b"CONNECT upstream.test:443 HTTP/1.1"]
    assert len(heads) == 2, "both calls through the one tunnel"
    assert heads[0].startswith(b"GET /v1/models HTTP/1.1\r\nHost: upstream.test\r\n")
    assert b"Proxy-Authorization" not in heads[0], "the proxy's credentials stay with it"


async def test_a_tunnel_the_proxy_refuses_is_a_proxy_error(tls_upstream):
    port, trusting, _ = tls_upstream
    proxy = await LoopbackProxy(tunnel_to=port, authorization="Basic right").start()
    http = HTTPClient(ssl_context=trusting, proxies=proxy.proxies("wrong:credentials"))
    try:
        with pytest.raises(ProxyError) as refused:
            await http.request("GET", "https://upstream.test/v1/models")
        assert "refused the tunnel to upstream.test:443: 407 Proxy Authentication Required" in (
            str(refused.value))
        assert not http._open
    finally:
        await http.close()
        await proxy.close()


async def test_a_proxy_that_closes_before_answering_is_a_proxy_error():
    async def hang_up(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = HTTPClient(proxies=Proxies.from_env({"HTTPS_PROXY": f"127.0.0.1:{port}"}))
    try:
        with pytest.raises(ProxyError, match="closed the connection before answering CONNECT"):
            await http.request("GET", "https://upstream.test/")
    finally:
        await http.close()
        server.close()


async def test_a_loopback_upstream_is_called_directly_with_a_proxy_set():
    async def answers(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(answers, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    proxy = await LoopbackProxy().start()
    http = HTTPClient(proxies=proxy.proxies())
    try:
        async with await http.request("GET", f"http://127.0.0.1:{port}/") as resp:
            assert await resp.read() == b"ok"
        assert proxy.heads == []
    finally:
        await http.close()
        await proxy.close()
        upstream.close()


# --- the gateway ------------------------------------------------------------------------------

CHAT_ANSWER = (b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":'
               b'[{"index":0,"message":{"role":"assistant","content":"via the proxy"},'
               b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,'
               b'"total_tokens":3}}')


async def test_the_gateway_calls_its_providers_through_the_environments_proxy(ferro_client):
    class ChatProxy(LoopbackProxy):
        async def _serve(self, reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(CHAT_ANSWER), CHAT_ANSWER))
            await writer.drain()
            writer.close()

    proxy = await ChatProxy().start()
    config = {"providers": {"openai": {"api_key": "k", "base_url": "http://api.upstream.test/v1"}},
              "targets": [{"virtual_key": "openai"}]}
    client = await ferro_client(config, env={"HTTP_PROXY": proxy.url})
    async with client.post("/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}]}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["choices"][0]["message"]["content"] == "via the proxy"
    assert proxy.heads[0].startswith(b"POST http://api.upstream.test/v1/chat/completions ")
    await proxy.close()


def test_a_gateway_with_a_bad_proxy_variable_does_not_start(ferro_app):
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        ferro_app({"providers": {"echo": {}}, "targets": [{"virtual_key": "echo"}]},
                  env={"HTTPS_PROXY": "socks5://p:1080"})


async def test_a_tunnel_the_proxy_refuses_is_a_502_naming_its_answer(ferro_client):
    proxy = await LoopbackProxy(authorization="Basic right").start()
    config = {"providers": {"openai": {"api_key": "k", "base_url": "https://api.upstream.test/v1"}},
              "targets": [{"virtual_key": "openai", "retry": {"attempts": 1}}]}
    client = await ferro_client(config, env={"HTTPS_PROXY": proxy.url})
    async with client.post("/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}]}) as resp:
        body = await resp.json()
    await proxy.close()
    assert resp.status == 502, body
    assert body["error"]["code"] == "upstream_unreachable"
    assert "407 Proxy Authentication Required" in body["error"]["message"]
