"""``ProviderContract`` and ``StrategyContract``: the tests every provider and strategy
package inherits, against a real local server."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiohttp
import attrs
import pytest
from aiohttp import web

from ferro.attempt import ChunkStream, attempt_for
from ferro.config import (
    ConfigSource,
    Duration,
    ProviderSettings,
    RetryConfig,
    StrategyConfig,
    build_options,
)
from ferro.errors import InvalidRequestError, UpstreamError
from ferro.operations import OPERATIONS, ChatRequest, ChatResponse, EmbeddingsRequest
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.testing.helpers import FakeUpstream, Handler, RecordedRequest, collect, make_provider
from ferro.testing.stub import StubOptions, StubProvider
from ferro.types import ModelInfo, RequestContext, Target

__all__ = ["ProviderContract", "StrategyContract"]



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
        """A refused key is the gateway's failure, not the caller's: a 502 naming it."""
        upstream = await upstream_with(self._error_handler(401))
        provider = provider_for(upstream)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(self.chat_request())
        assert (info.value.status, info.value.code) == (502, "upstream_auth_error")
        assert info.value.upstream_status == 401
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

    def test_serves_the_operations_it_declares(self) -> None:
        provider = make_provider(self.provider_type, self.settings("http://127.0.0.1:9"), None)
        assert "chat" in provider.operations
        for name in provider.operations:
            operation = OPERATIONS[name]
            for method in (operation.call, operation.stream):
                assert method is None or callable(getattr(provider, method, None)), (
                    f"{self.provider_type} declares {name} but has no {method}()")

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


class StrategyContract:
    """Contract tests every strategy package runs. Subclass it and set ``mode``; override
    :meth:`strategy_config` when the strategy needs options. :meth:`route` drives the
    strategy as the pipeline does, through the kernel's attempt helper."""

    mode: ClassVar[str]

    def strategy_config(self) -> StrategyConfig:
        return StrategyConfig(mode=self.mode)

    def make(self, *providers: StubProvider) -> Any:
        registry = build_registry(make_plugin_manager(env={}))
        cls = registry.lookup("strategies", self.mode, "<test>")
        config = self.strategy_config()
        options = build_options(cls, config.options, ConfigSource(None), ("strategy", "options"))
        return cls(attrs.evolve(config, options=options), self.targets(*providers))

    @staticmethod
    def targets(*providers: Any, attempts: int = 1) -> list[Target]:
        """Targets for ``providers``, retrying quickly (``attempts`` calls each)."""
        retry = RetryConfig(attempts=attempts, backoff=Duration(0.001),
                            max_backoff=Duration(0.002))
        return [Target(p.name, p, retry=retry, kind="stub") for p in providers]

    @staticmethod
    def context(*, stream: bool = False, model: str = "m") -> RequestContext:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        return RequestContext(ChatRequest(body), "test-request")

    @staticmethod
    async def route(strategy: Any, ctx: RequestContext | None = None) -> Any:
        ctx = ctx or StrategyContract.context()
        return await strategy.route(ctx, attempt_for(ctx))

    def test_is_registered(self) -> None:
        assert self.mode in build_registry(make_plugin_manager(env={})).strategies

    async def test_routes_to_a_healthy_target(self) -> None:
        a, b = StubProvider("a"), StubProvider("b")
        response = await self.route(self.make(a, b))
        assert response.provider in ("a", "b")
        assert a.calls + b.calls == 1

    async def test_client_errors_are_not_retried_or_hidden(self) -> None:
        bad = InvalidRequestError("bad request")
        a, b = StubProvider("a", fail_with=bad), StubProvider("b", fail_with=bad)
        with pytest.raises(InvalidRequestError):
            await self.route(self.make(a, b))
        assert a.calls + b.calls == 1

    async def test_only_targets_serving_the_operation_are_tried(self) -> None:
        chat_only = StubProvider("a", ProviderSettings(
            type="stub", options=StubOptions(operations=["chat"])))
        b = StubProvider("b")
        ctx = RequestContext(EmbeddingsRequest({"model": "m", "input": "x"}), "test-request")
        response = await self.route(self.make(chat_only, b), ctx)
        assert response.provider == "b"
        assert chat_only.calls == 0

    async def test_cancellation_propagates_without_more_calls(self) -> None:
        a, b = StubProvider("a"), StubProvider("b")
        strategy = self.make(a, b)
        calls = 0

        async def cancelled(target: Target) -> ChatResponse:
            nonlocal calls
            calls += 1
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await strategy.route(self.context(), cancelled)
        assert calls == 1

    async def test_same_engine_for_streams(self) -> None:
        a = StubProvider("a", ProviderSettings(
            type="stub", options=StubOptions(reply="streamed through the strategy")))
        ctx = self.context(stream=True)
        stream = await self.route(self.make(a), ctx)
        assert isinstance(stream, ChunkStream), "a stream request must give a stream"
        chunks = [stream.first]
        async for piece in stream.rest or ():
            chunks.append(piece)
        await stream.close(None)
        text = "".join(ch["delta"].get("content") or "" for c in chunks
                       for ch in c.as_dict()["choices"])
        assert text.strip() == "streamed through the strategy"
        assert chunks[-1].as_dict()["usage"]["completion_tokens"] == 4
        assert (a.calls, ctx.attempts, ctx.tried) == (1, 1, ["a"])
