"""The HTTP edge: what reaches the gateway from clients it does not trust. Malformed
requests and keys, body types, Host names, CORS, which routes need a key, the probes, the
cost of deep health checks, and the connection limit's open-file arithmetic."""

import asyncio
import resource

import orjson
import pytest
from aiohttp import web
from ferro import Duration, hookimpl, make_plugin_manager, public_route
from ferro.connections import FD_RESERVE, connection_limit, raise_open_file_limit
from ferro.server import GatewayServer
from ferro.testing import as_config

ECHO = {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}]}
HELLO = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
KEYED = {**ECHO, "server": {"api_keys": ["sk-good"]}}
GOOD_KEY = {"Authorization": "Bearer sk-good"}
JSON_ROUTES = {
    "/v1/chat/completions": HELLO,
    "/v1/completions": {"model": "m", "prompt": "hello"},
    "/v1/embeddings": {"model": "m", "input": "hello"},
}


def assert_error(body, status_type, code):
    assert set(body) == {"error"}
    assert body["error"]["type"] == status_type
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def exchange(port, request):
    """Send raw request bytes; the status, headers and body the server sends before it
    closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def served(config, ferro_app):
    """The gateway for ``config`` on a loopback port, with its own connection handling."""
    config = as_config(config)
    config.server.port = 0
    config.server.shutdown_timeout = Duration(1)
    return GatewayServer(ferro_app(config), config.server, config.server.max_connections)


# --- malformed requests and keys ---------------------------------------------------------


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe\xfd", "Bearer ключ".encode()])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"),
                                              ("GET", "/v1/models")])
async def test_an_authorization_that_cannot_be_a_key_is_a_401(ferro_app, value, method, path):
    body = orjson.dumps(HELLO)
    async with served(KEYED, ferro_app) as server:
        status, headers, raw = await exchange(server.port, (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n").encode()
            + b"Authorization: " + value + b"\r\n\r\n" + body)
    assert status == 401
    assert headers["content-type"] == "application/json"
    assert_error(orjson.loads(raw), "authentication_error", "invalid_api_key")


@pytest.mark.parametrize("request_bytes", [
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"NOT A REQUEST LINE\r\n\r\n",
    b"GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
])
async def test_bad_framing_is_a_400_in_the_error_schema(ferro_app, request_bytes):
    async with served(ECHO, ferro_app) as server:
        status, headers, body = await exchange(server.port, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["server"] == "ferro"
    assert headers["x-request-id"]
    error = orjson.loads(body)
    assert_error(error, "invalid_request_error", "malformed_request")
    assert error["error"]["message"].startswith("malformed HTTP request: ")


async def test_no_server_header_names_software_or_versions(ferro_client):
    client = await ferro_client(ECHO)
    for resp in (await client.post("/v1/chat/completions", json=HELLO),
                 await client.get("/nowhere"),
                 await client.get("/health/live")):
        assert resp.headers["Server"] == "ferro"


# --- body types -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(JSON_ROUTES))
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x",
                                          "application/jsonp", None])
async def test_json_routes_refuse_other_bodies_with_a_415(ferro_client, path, content_type):
    client = await ferro_client(ECHO)
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await client.post(path, data=orjson.dumps(JSON_ROUTES[path]), headers=headers,
                             skip_auto_headers=["Content-Type"])
    assert resp.status == 415
    assert_error(await resp.json(), "invalid_request_error", "unsupported_media_type")


@pytest.mark.parametrize("path", list(JSON_ROUTES))
async def test_json_with_parameters_is_json(ferro_client, path):
    client = await ferro_client(ECHO)
    resp = await client.post(path, data=orjson.dumps(JSON_ROUTES[path]),
                             headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert resp.status == 200


# --- Host names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "host", "status"), [
    ({}, "localhost:8080", 200),
    ({}, "127.0.0.1", 200),
    ({}, "[::1]:8080", 200),
    ({}, "LOCALHOST", 200),
    ({}, "attacker.example", 421),
    ({}, "127.0.0.1.attacker.example:8080", 421),
    ({"allowed_hosts": ["api.example.com", "::1"]}, "API.example.com:443", 200),
    ({"allowed_hosts": ["api.example.com", "::1"]}, "[::1]", 200),
    ({"allowed_hosts": ["api.example.com"]}, "localhost", 421),
    ({"host": "0.0.0.0"}, "attacker.example", 200),
    ({"host": "127.0.0.1", "allowed_hosts": ["*"]}, "attacker.example", 200),
])
async def test_hosts_the_gateway_serves(ferro_client, server, host, status):
    client = await ferro_client({**ECHO, "server": server})
    resp = await client.post("/v1/chat/completions", json=HELLO, headers={"Host": host})
    assert resp.status == status
    if status == 421:
        assert_error(await resp.json(), "invalid_request_error", "host_not_allowed")
        assert (await client.get("/v1/models", headers={"Host": host})).status == 421
        assert (await client.get("/nowhere", headers={"Host": host})).status == 421


async def test_the_probes_answer_any_host(ferro_client):
    client = await ferro_client(ECHO)
    for path in ("/health/live", "/health/ready"):
        assert (await client.get(path, headers={"Host": "10.1.2.3:8080"})).status == 200


async def test_a_reload_applies_the_new_allowed_hosts(ferro_client):
    from ferro.app import reload

    client = await ferro_client(ECHO)
    assert (await client.get("/v1/models", headers={"Host": "api.example.com"})).status == 421
    reload(client.app, as_config({**ECHO, "server": {"allowed_hosts": ["api.example.com"]}}))
    assert (await client.get("/v1/models", headers={"Host": "api.example.com"})).status == 200


# --- CORS ----------------------------------------------------------------------------------


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


async def test_a_preflight_is_answered_on_routes_only(ferro_client):
    client = await ferro_client({**ECHO, "server": {"cors_origins": ["https://app.example"]}})
    resp = await client.options("/v1/chat/completions", headers=PREFLIGHT)
    assert resp.status == 204
    resp = await client.options("/v1/no-such-route", headers=PREFLIGHT)
    assert resp.status == 404
    assert_error(await resp.json(), "invalid_request_error", "not_found")


async def test_a_preflight_needs_no_key(ferro_client):
    client = await ferro_client({**KEYED, "server": {"api_keys": ["sk-good"],
                                                     "cors_origins": ["https://app.example"]}})
    assert (await client.options("/v1/chat/completions", headers=PREFLIGHT)).status == 204
    assert (await client.get("/nowhere")).status == 401


@pytest.mark.parametrize("origin", ["https://evil.example", None])
async def test_vary_origin_is_sent_whatever_the_origin(ferro_client, origin):
    client = await ferro_client({**ECHO, "server": {"cors_origins": ["https://app.example"]}})
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Origin": origin} if origin else {})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert resp.headers["Vary"] == "Origin"


async def test_a_wildcard_does_not_allow_the_null_origin(ferro_client):
    client = await ferro_client({**ECHO, "server": {"cors_origins": ["*"]}})
    resp = await client.post("/v1/chat/completions", json=HELLO, headers={"Origin": "null"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Origin": "https://any.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://any.example"


# --- keys on every route ----------------------------------------------------------------------


class PluginRoutes:
    @hookimpl
    def configure_app(self, app):
        async def private(request):
            return web.json_response({"secret": True})

        @public_route
        async def status(request):
            return web.json_response({"status": "fine"})

        app.router.add_get("/private", private)
        app.router.add_get("/status", status)


def with_plugin_routes():
    pm = make_plugin_manager(env={})
    pm.register(PluginRoutes(), name="plugin-routes")
    return pm


async def test_a_plugin_route_requires_a_key_unless_it_is_public(ferro_client):
    client = await ferro_client(KEYED, pm=with_plugin_routes())
    resp = await client.get("/private")
    assert resp.status == 401
    assert_error(await resp.json(), "authentication_error", "invalid_api_key")
    assert (await client.get("/private", headers={"Authorization": "Bearer sk-bad"})).status == 401
    assert await (await client.get("/private", headers=GOOD_KEY)).json() == {"secret": True}
    assert await (await client.get("/status")).json() == {"status": "fine"}


async def test_without_keys_plugin_routes_are_open(ferro_client):
    client = await ferro_client(ECHO, pm=with_plugin_routes())
    assert (await client.get("/private")).status == 200


async def test_liveness_is_always_open(ferro_client):
    client = await ferro_client({**ECHO, "server": {"api_keys": ["sk-good"],
                                                    "public_readiness": False}})
    resp = await client.get("/health/live")
    assert (resp.status, await resp.json()) == (200, {"status": "ok"})
    assert (await client.get("/health/ready")).status == 401
    resp = await client.get("/health/ready", headers=GOOD_KEY)
    assert (resp.status, await resp.json()) == (200, {"status": "ready"})


async def test_readiness_is_public_by_default_and_fails_once_draining(ferro_client):
    from ferro.app import HEALTH

    client = await ferro_client(KEYED)
    assert (await client.get("/health/ready")).status == 200
    client.app[HEALTH].draining = True
    resp = await client.get("/health/ready")
    assert resp.status == 503
    assert_error(await resp.json(), "server_error", "server_shutting_down")
    assert (await client.get("/health/live")).status == 200


# --- deep health ---------------------------------------------------------------------------


def counting_models(delay=0.0):
    calls = []

    async def models(request):
        calls.append(1)
        await asyncio.sleep(delay)
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o"}]})

    return calls, models


async def test_deep_health_is_cached_and_checked_once_at_a_time(ferro_client, fake_upstream,
                                                                monkeypatch):
    from ferro import health

    monkeypatch.setattr(health, "DEEP_TTL", 0.3)
    calls, models = counting_models(delay=0.1)
    upstream = await fake_upstream({"GET /v1/models": models})
    client = await ferro_client({"providers": {"openai": {"api_key": "k", "models": ["gpt-4o"],
                                                          "base_url": upstream.url + "/v1"}}})
    replies = await asyncio.gather(*(client.get("/health?deep=1") for _ in range(10)))
    assert [r.status for r in replies] == [200] * 10
    assert {(await r.json())["status"] for r in replies} == {"ok"}
    assert len(calls) == 1  # ten callers at once, one check
    for _ in range(5):
        assert (await client.get("/health?deep=1")).status == 200
    assert len(calls) == 1  # within the TTL, the result is reused
    await asyncio.sleep(0.35)
    assert (await client.get("/health?deep=1")).status == 200
    assert len(calls) == 2


async def test_health_is_behind_the_key(ferro_client, fake_upstream):
    calls, models = counting_models()
    upstream = await fake_upstream({"GET /v1/models": models})
    client = await ferro_client({"providers": {"openai": {"api_key": "k", "models": ["gpt-4o"],
                                                          "base_url": upstream.url + "/v1"}},
                                 "server": {"api_keys": ["sk-good"]}})
    resp = await client.get("/health?deep=1")
    assert resp.status == 401
    assert_error(await resp.json(), "authentication_error", "invalid_api_key")
    assert calls == []
    resp = await client.get("/health?deep=1", headers=GOOD_KEY)
    assert (await resp.json())["status"] == "ok"
    assert len(calls) == 1


# --- the connection limit and the open-file limit -------------------------------------------


def test_the_open_file_limit_is_raised_to_the_hard_limit(monkeypatch):
    limits = {"now": (1024, 65536)}
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _kind, value: limits.update(now=value))
    assert raise_open_file_limit() == 65536
    assert limits["now"] == (65536, 65536)


def test_an_open_file_limit_that_cannot_be_raised_is_kept(monkeypatch):
    def refuse(_kind, _value):
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert raise_open_file_limit() == 1024


def test_the_connection_limit_stays_below_the_open_file_limit():
    assert connection_limit(1024, 1 << 20) == 1024
    lowered = connection_limit(1024, 1024)
    assert lowered == (1024 - FD_RESERVE) // 2
    assert 2 * lowered + FD_RESERVE <= 1024  # a client and an upstream socket each, and the reserve
