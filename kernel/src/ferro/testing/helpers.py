"""Fixtures and helpers of the test kit (registered with pytest by ``ferro.testing``)."""

from __future__ import annotations

import itertools
import socket
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs
import orjson
import pytest
from aiohttp import web

from ferro.app import create_app
from ferro.config import Config, ConfigSource, ProviderSettings, structure
from ferro.http_client import HTTPClient
from ferro.operations import RawFrames
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.testing.stub import StubPlugin

_data_dirs = itertools.count()


@pytest.fixture(autouse=True)
def _own_data_dir(monkeypatch: pytest.MonkeyPatch,
                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test's ``ferrogw serve`` processes keep their embedded storage (keys, config
    history, request logs) in a directory of the test's own, never in one another's or in
    the working directory. The directory is made only when a process uses it."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("FERRO_DATA_DIR", str(base / f"ferro-data-{next(_data_dirs)}"))


def as_config(config: Mapping[str, Any] | Config) -> Config:
    """A Config from a config dict, as a test config file would give."""
    if isinstance(config, Config):
        return config
    source = ConfigSource("<test config>", dict(config))
    result = structure(dict(config), Config, source)
    result.source = source
    return result


@pytest.fixture
def ferro_app() -> Callable[..., web.Application]:
    """``ferro_app(config, env={})``: the gateway app for a config dict, with every installed
    plugin loaded. ``env`` replaces the process environment for provider discovery."""

    def factory(config: Mapping[str, Any] | Config, env: Mapping[str, str] | None = None,
                pm: Any = None) -> web.Application:
        return create_app(as_config(config), pm or make_plugin_manager(env={}), env=env or {})

    return factory


@pytest.fixture
def ferro_client(aiohttp_client: Any, ferro_app: Any) -> Callable[..., Awaitable[Any]]:
    """``await ferro_client(config, env={})``: an in-process aiohttp test client."""

    async def factory(config: Mapping[str, Any] | Config, env: Mapping[str, str] | None = None,
                      pm: Any = None) -> Any:
        return await aiohttp_client(ferro_app(config, env, pm))

    return factory


@pytest.fixture
def ferro_server(aiohttp_server: Any, ferro_app: Any) -> Callable[..., Awaitable[Any]]:
    """``await ferro_server(config)``: the gateway on a real loopback socket; use
    ``server.make_url("/v1")`` as the ``openai`` client's base URL."""

    async def factory(config: Mapping[str, Any] | Config, env: Mapping[str, str] | None = None,
                      pm: Any = None) -> Any:
        return await aiohttp_server(ferro_app(config, env, pm))

    return factory


@pytest.fixture
def stub_plugins() -> Any:
    """A plugin manager with the installed plugins plus provider type ``stub``
    (:class:`~ferro.testing.StubProvider`): pass it as ``pm=`` with a :func:`stub_config`."""
    pm = make_plugin_manager(env={})
    pm.register(StubPlugin(), name="ferro-testing-stub")
    return pm


def stub_config(*names: str, strategy: str = "single", **options: Any) -> dict[str, Any]:
    """A config whose targets are stub providers ``names`` (default one, ``stub``), each
    with ``options`` (see :class:`~ferro.testing.stub.StubOptions`)."""
    names = names or ("stub",)
    return {"strategy": {"mode": strategy},
            "providers": {n: {"type": "stub", **options} for n in names},
            "targets": [{"virtual_key": n} for n in names]}


#: The gateway's upstream client that goes with each ``http_session``.
_UPSTREAM_CLIENTS: weakref.WeakKeyDictionary[aiohttp.ClientSession, HTTPClient] = (
    weakref.WeakKeyDictionary())


@pytest.fixture
async def http_session() -> Any:
    """An ``aiohttp.ClientSession`` for providers under test, closed after the test. A
    provider that :func:`make_provider` builds with it calls its upstream through the
    gateway's own client, as in the gateway, which is closed after the test too."""
    http = HTTPClient()
    async with aiohttp.ClientSession() as session:
        _UPSTREAM_CLIENTS[session] = http
        try:
            yield session
        finally:
            await http.close()


@pytest.fixture
async def openai_client(ferro_server: Any) -> Any:
    """``await openai_client(config, api_key="unused")``: the official ``openai.AsyncOpenAI``
    client (no retries) talking to the gateway, started for ``config`` on a loopback socket.
    Needs the ``openai`` package."""
    import openai

    clients: list[Any] = []

    async def start(config: Mapping[str, Any] | Config, *, api_key: str = "unused",
                    env: Mapping[str, str] | None = None, pm: Any = None) -> Any:
        server = await ferro_server(config, env, pm)
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=api_key,
                                    max_retries=0)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def installed_plugins(env: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """What ``ferrogw-cli plugins --json`` lists, by plugin name."""
    from ferro.cli import plugin_rows

    return {row["name"]: row for row in plugin_rows(make_plugin_manager(env=env or {}))}


def single_provider(name: str, **settings: Any) -> dict[str, Any]:
    """A config whose one target is provider ``name`` with ``settings``."""
    return {"providers": {name: settings}, "targets": [{"virtual_key": name}]}


@attrs.define
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class FakeUpstream:
    """A local fake provider. ``url`` is its base URL; ``requests`` what it received."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.requests: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def fake_upstream(aiohttp_server: Any) -> Callable[..., Awaitable[FakeUpstream]]:
    """``await fake_upstream({"POST /v1/chat/completions": handler, ...})``.

    A handler is an aiohttp handler, or a plain value: a dict (JSON reply), ``bytes``
    (an SSE body) or an ``(status, dict)`` tuple. Paths may use aiohttp patterns.
    """

    async def factory(routes: Mapping[str, Any]) -> FakeUpstream:
        upstream: FakeUpstream | None = None

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            assert upstream is not None
            upstream.requests.append(RecordedRequest(
                request.method, request.path, dict(request.query), dict(request.headers),
                await request.read()))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for spec, handler in routes.items():
            method, _, path = spec.partition(" ")
            app.router.add_route(method, path, _as_handler(handler))
        upstream = FakeUpstream(await aiohttp_server(app))
        return upstream

    return factory


def _as_handler(value: Any) -> Handler:
    if callable(value):
        return value

    async def handler(request: web.Request) -> web.StreamResponse:
        if isinstance(value, bytes):
            return web.Response(body=value, content_type="text/event-stream")
        if isinstance(value, tuple):
            status, body = value
            return web.json_response(body, status=status)
        return web.json_response(value)

    return handler


# --- making providers ---------------------------------------------------------------------


def make_provider(
    provider_type: str,
    settings: Mapping[str, Any],
    session: aiohttp.ClientSession | None,
    *,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Any:
    """An instance of an installed provider type, configured as the config file would.
    With the ``http_session`` fixture's session, it calls upstream through the gateway's
    own client, as in the gateway."""
    registry = build_registry(make_plugin_manager(env={}))
    cls = registry.lookup("providers", provider_type, "<test>")
    source = ConfigSource("<test>", None)
    parsed = structure({"type": provider_type, **settings}, ProviderSettings, source)
    resolved = cls.resolve_settings(name or provider_type, parsed, env or {}, source)
    if resolved is None:
        raise AssertionError(f"{provider_type}: settings {dict(settings)} leave it unconfigured")
    provider = cls(name or provider_type, resolved, session)
    if session is not None and session in _UPSTREAM_CLIENTS:
        provider.http = _UPSTREAM_CLIENTS[session]
    return provider


def sse_body(*events: Any, event_names: list[str | None] | None = None) -> bytes:
    """An SSE body: each event a dict (JSON-encoded) or bytes, optionally with ``event:``."""
    out = b""
    for i, data in enumerate(events):
        name = event_names[i] if event_names else None
        if name:
            out += b"event: " + name.encode() + b"\n"
        out += b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"
    return out


async def collect(stream: Any) -> list[dict[str, Any]]:
    """Every chunk of a provider's stream, as dicts (raw frames split into their chunks)."""
    out = []
    async for item in stream:
        for chunk in item.chunks() if isinstance(item, RawFrames) else (item,):
            out.append(chunk.as_dict())
    return out


# --- the machine's Redis ------------------------------------------------------------------

#: The Redis the tests of Redis backends use.
REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


#: Marks a test that needs the Redis at :data:`REDIS_URL`: skipped, saying so, without one.
needs_redis = pytest.mark.skipif(not _redis_answers(), reason="no Redis server at 127.0.0.1:6379")
