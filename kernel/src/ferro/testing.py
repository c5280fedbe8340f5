"""Test kit for the gateway and its plugins: a pytest plugin (entry point ``pytest11``).

Fixtures
    ``ferro_app``       build a gateway app from a config dict (or Config)
    ``ferro_client``    ...and an in-process aiohttp test client for it
    ``ferro_server``    ...or a real loopback server
    ``openai_client``   ...with the official ``openai`` client pointed at it
    ``fake_upstream``   a local fake provider: routes -> handlers, with every request recorded
    ``http_session``    a client session for providers under test (with ``make_provider``)

Contract test classes
    :class:`ProviderContract` and :class:`StrategyContract`: subclass them in a provider or
    strategy package and fill in the few native details; the tests come with them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import aiohttp
import attrs
import orjson
import pytest
from aiohttp import web

from ferro.app import create_app
from ferro.config import Config, ConfigSource, ProviderSettings, StrategyConfig, structure
from ferro.errors import GatewayError, InvalidRequestError, UpstreamError
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.types import ChatChunk, ChatRequest, ChatResponse, ModelInfo, RawFrames, Target

__all__ = [
    "FakeUpstream",
    "ProviderContract",
    "StrategyContract",
    "installed_plugins",
    "make_provider",
    "patch_aioresponses",
    "single_provider",
]


# --- aioresponses on aiohttp >= 3.14 --------------------------------------------------------


def patch_aioresponses() -> None:
    """Let aioresponses <= 0.7.9 build responses on aiohttp >= 3.14.

    aiohttp 3.14 made ``ClientResponse(stream_writer=...)`` a required argument, and
    aioresponses 0.7.9 (the newest release) does not pass it, so every mocked request fails
    with ``TypeError: ... missing 1 required keyword-only argument: 'stream_writer'``
    (pnuckowski/aioresponses#289; fixes proposed in #288 and #292). This supplies the
    argument. It does nothing on an aiohttp or aioresponses that does not need it; delete it
    once a fixed aioresponses is released.
    """
    try:
        import aioresponses.core as core
    except ImportError:
        return
    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return
    original = core.RequestMatch._build_response
    if getattr(original, "ferro_patched", False):
        return

    class _SentRequest:
        """Stands in for the writer of a request that was never sent."""

        output_size = 0

    def build_response(self: Any, url: Any, *args: Any, response_class: Any = None, **kw: Any):
        base = response_class or aiohttp.ClientResponse

        class Response(base):  # type: ignore[misc, valid-type]
            def __init__(self, *a: Any, **k: Any) -> None:
                k.setdefault("stream_writer", _SentRequest())
                super().__init__(*a, **k)

        return original(self, url, *args, response_class=Response, **kw)

    build_response.ferro_patched = True  # type: ignore[attr-defined]
    core.RequestMatch._build_response = build_response


patch_aioresponses()


# --- fixtures -----------------------------------------------------------------------------


def _as_config(config: Mapping[str, Any] | Config) -> Config:
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
        return create_app(_as_config(config), pm or make_plugin_manager(env={}), env=env or {})

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
async def http_session() -> Any:
    """An ``aiohttp.ClientSession`` for providers under test, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


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
    """An instance of an installed provider type, configured as the config file would."""
    registry = build_registry(make_plugin_manager(env={}))
    cls = registry.lookup("providers", provider_type, "<test>")
    source = ConfigSource("<test>", None)
    parsed = structure({"type": provider_type, **settings}, ProviderSettings, source)
    resolved = cls.resolve_settings(name or provider_type, parsed, env or {}, source)
    if resolved is None:
        raise AssertionError(f"{provider_type}: settings {dict(settings)} leave it unconfigured")
    return cls(name or provider_type, resolved, session)


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


# --- provider contract --------------------------------------------------------------------


class ProviderContract:
    """Contract tests every provider package runs. Subclass it in ``tests/`` and set:

    ``provider_type``   the registered type name
    ``upstream_path``   the aiohttp route pattern the provider POSTs to (chat and stream)
    ``model``           a model name the provider serves

    and implement the native formats: :meth:`native_reply`, :meth:`native_stream`,
    :meth:`native_truncated_stream`, :meth:`native_error`. Override :meth:`settings` when
    the provider needs more than an API key and base URL, and :meth:`check_auth` to assert
    how it authenticates.
    """

    provider_type: ClassVar[str]
    upstream_path: ClassVar[str]
    model: ClassVar[str] = "test-model"
    stream_content_type: ClassVar[str] = "text/event-stream"

    TEXT_PARTS: ClassVar[tuple[str, ...]] = ("Hello", ", wor", "ld!")
    PROMPT_TOKENS: ClassVar[int] = 11
    COMPLETION_TOKENS: ClassVar[int] = 3

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"api_key": "test-key", "base_url": base_url}

    def native_reply(self, text: str, prompt_tokens: int, completion_tokens: int) -> Any:
        raise NotImplementedError

    def native_stream(self, parts: tuple[str, ...], prompt_tokens: int,
                      completion_tokens: int) -> bytes:
        raise NotImplementedError

    def native_truncated_stream(self, parts: tuple[str, ...]) -> bytes:
        """A stream that stops mid-answer, before the provider's terminal event."""
        raise NotImplementedError

    def native_error(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "error", "code": str(status)}}

    def check_auth(self, request: RecordedRequest) -> None:
        assert request.headers.get("Authorization") == "Bearer test-key"

    def chat_request(self, stream: bool = False) -> ChatRequest:
        body: dict[str, Any] = {"model": self.model,
                                "messages": [{"role": "user", "content": "Say hello"}]}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return ChatRequest(body)

    # fixtures

    @pytest.fixture
    async def upstream_with(self, fake_upstream: Any) -> Any:
        async def factory(handler: Any) -> FakeUpstream:
            return await fake_upstream({f"POST {self.upstream_path}": handler})

        return factory

    @pytest.fixture
    def provider_for(self, http_session: aiohttp.ClientSession) -> Any:
        return lambda upstream: make_provider(self.provider_type, self.settings(upstream.url),
                                              http_session)

    def _stream_handler(self, body: bytes, status: int = 200) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(status=status,
                                      headers={"Content-Type": self.stream_content_type})
            await resp.prepare(request)
            await resp.write(body)
            await resp.write_eof()
            return resp

        return handler

    def _error_handler(self, status: int, headers: dict[str, str] | None = None) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.json_response(self.native_error(status, f"failure {status}"),
                                     status=status, headers=headers)

        return handler

    # tests

    def test_is_registered(self) -> None:
        registry = build_registry(make_plugin_manager(env={}))
        assert self.provider_type in registry.providers

    async def test_chat_returns_text_usage_and_provider(self, upstream_with, provider_for):
        text = "".join(self.TEXT_PARTS)
        upstream = await upstream_with(
            self.native_reply(text, self.PROMPT_TOKENS, self.COMPLETION_TOKENS))
        provider = provider_for(upstream)
        response = await provider.chat(self.chat_request())
        assert isinstance(response, ChatResponse)
        body = response.body
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == text
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["finish_reason"] == "stop"
        assert body["provider"] == self.provider_type
        assert response.usage.prompt_tokens == self.PROMPT_TOKENS
        assert response.usage.completion_tokens == self.COMPLETION_TOKENS
        assert response.usage.total_tokens == self.PROMPT_TOKENS + self.COMPLETION_TOKENS
        self.check_auth(upstream.requests[0])

    async def test_stream_yields_deltas_finish_and_usage(self, upstream_with, provider_for):
        upstream = await upstream_with(self._stream_handler(
            self.native_stream(self.TEXT_PARTS, self.PROMPT_TOKENS, self.COMPLETION_TOKENS)))
        provider = provider_for(upstream)
        chunks = await collect(provider.stream(self.chat_request(stream=True)))
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
        assert text == "".join(self.TEXT_PARTS)
        finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                    if ch.get("finish_reason")]
        assert finishes == ["stop"]
        usage = [c["usage"] for c in chunks if c.get("usage")]
        assert usage, "the stream must end with usage"
        assert usage[-1]["prompt_tokens"] == self.PROMPT_TOKENS
        assert usage[-1]["completion_tokens"] == self.COMPLETION_TOKENS
        self.check_auth(upstream.requests[0])

    async def test_truncated_stream_is_an_error(self, upstream_with, provider_for):
        upstream = await upstream_with(self._stream_handler(
            self.native_truncated_stream(self.TEXT_PARTS)))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await collect(provider.stream(self.chat_request(stream=True)))
        assert info.value.status >= 500

    async def test_rate_limit_keeps_status_and_retry_after(self, upstream_with, provider_for):
        upstream = await upstream_with(self._error_handler(429, {"Retry-After": "7"}))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert info.value.status == 429
        assert info.value.retryable
        assert info.value.headers.get("Retry-After") == "7"
        assert "failure 429" in info.value.message

    async def test_server_error_is_retryable(self, upstream_with, provider_for):
        upstream = await upstream_with(self._error_handler(500))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert info.value.status == 500
        assert info.value.retryable

    async def test_stream_error_before_first_byte(self, upstream_with, provider_for):
        upstream = await upstream_with(self._error_handler(503))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await collect(provider.stream(self.chat_request(stream=True)))
        assert info.value.status == 503
        assert info.value.retryable

    async def test_auth_error_is_not_retryable(self, upstream_with, provider_for):
        upstream = await upstream_with(self._error_handler(401))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert info.value.status == 401
        assert not info.value.retryable

    async def test_invalid_json_is_a_502(self, upstream_with, provider_for):
        async def garbage(request: web.Request) -> web.Response:
            return web.Response(body=b"<html>oops</html>", content_type="application/json")

        upstream = await upstream_with(garbage)
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert info.value.status == 502

    async def test_unreachable_upstream_is_retryable(self, provider_for, unused_tcp_port):
        provider = provider_for(FakeUpstream(_Unreachable(unused_tcp_port)))
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert info.value.retryable

    def test_supports_its_model(self) -> None:
        provider = make_provider(self.provider_type, self.settings("http://127.0.0.1:9"), None)
        assert provider.supports_model(self.model)
        assert all(isinstance(m, ModelInfo) for m in provider.static_models())


@attrs.define
class _Unreachable:
    port: int

    def make_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# --- strategy contract --------------------------------------------------------------------


@attrs.define(eq=False)
class StubProvider:
    """A provider double for strategy tests: answers, or raises, as told."""

    name: str
    fail_with: GatewayError | None = None
    calls: int = 0

    def supports_model(self, model: str) -> bool:
        return True

    def static_models(self) -> list[ModelInfo]:
        return []

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return ChatResponse({"object": "chat.completion", "provider": self.name, "choices": []})

    async def stream(self, request: ChatRequest) -> Any:
        yield ChatChunk({"choices": []})


class StrategyContract:
    """Contract tests every strategy package runs. Subclass it and set ``mode``; override
    :meth:`strategy_config` when the strategy needs options."""

    mode: ClassVar[str]

    def strategy_config(self) -> StrategyConfig:
        return StrategyConfig(mode=self.mode)

    def make(self, *providers: StubProvider) -> Any:
        registry = build_registry(make_plugin_manager(env={}))
        cls = registry.lookup("strategies", self.mode, "<test>")
        targets = [Target(p.name, p, backoff=0.001, max_backoff=0.002) for p in providers]
        return cls(self.strategy_config(), targets)

    @staticmethod
    def request() -> ChatRequest:
        return ChatRequest({"model": "m", "messages": [{"role": "user", "content": "hi"}]})

    @staticmethod
    def call(target: Target) -> Awaitable[ChatResponse]:
        return target.provider.chat(StrategyContract.request())

    def test_is_registered(self) -> None:
        assert self.mode in build_registry(make_plugin_manager(env={})).strategies

    async def test_routes_to_a_healthy_target(self) -> None:
        a, b = StubProvider("a"), StubProvider("b")
        strategy = self.make(a, b)
        response = await strategy.route(self.request(), self.call)
        assert response.provider in ("a", "b")
        assert a.calls + b.calls == 1

    async def test_client_errors_are_not_retried_or_hidden(self) -> None:
        bad = InvalidRequestError("bad request")
        a, b = StubProvider("a", bad), StubProvider("b", bad)
        strategy = self.make(a, b)
        with pytest.raises(InvalidRequestError):
            await strategy.route(self.request(), self.call)
        assert a.calls + b.calls == 1

    async def test_cancellation_propagates_without_more_calls(self) -> None:
        a, b = StubProvider("a"), StubProvider("b")
        strategy = self.make(a, b)
        calls = 0

        async def cancelled(target: Target) -> ChatResponse:
            nonlocal calls
            calls += 1
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await strategy.route(self.request(), cancelled)
        assert calls == 1

    async def test_same_engine_for_streams(self) -> None:
        a = StubProvider("a")
        strategy = self.make(a)

        async def open_stream(target: Target) -> list[dict[str, Any]]:
            return await collect(target.provider.stream(self.request()))

        chunks = await strategy.route(self.request(), open_stream)
        assert chunks == [{"choices": []}]
