"""``StubProvider``: a provider for kernel, strategy and plugin tests, so they need no
provider package. It is written against :class:`ferro.Provider` alone (no base class), and
doubles as the proof that the protocol is all a provider needs.

As a registered type (``stub``, see the ``stub_plugins`` fixture) it is configured like any
provider: ``{"type": "stub", "reply": "hi", "fail_status": 503, "operations": [...]}``.
Built directly (``StubProvider("a", fail_with=UpstreamError(...))``) it is a strategy
double. It counts its calls, and records the requests it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import attrs

from ferro.config import ConfigSource, ProviderSettings, build_options
from ferro.errors import GatewayError, UpstreamError
from ferro.hookspecs import hookimpl
from ferro.operations import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    CompletionsResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    OperationRequest,
)
from ferro.types import ModelInfo

__all__ = ["StubOptions", "StubPlugin", "StubProvider"]


@attrs.define
class StubOptions:
    #: The answer's text; a stream sends it a word at a time.
    reply: str = "stub answer"
    #: Every call fails as an upstream answering this status would (None: answers).
    fail_status: int | None = None
    operations: list[str] = attrs.Factory(lambda: ["chat", "embeddings", "completions"])
    #: Seconds to wait before answering (and between stream chunks).
    delay: float = 0.0
    #: The length of each embedding vector.
    dimensions: int = 3


class StubProvider:
    env_api_key: ClassVar[str | None] = None
    Options: ClassVar[type] = StubOptions

    def __init__(self, name: str, settings: ProviderSettings | None = None,
                 session: aiohttp.ClientSession | None = None, *,
                 fail_with: GatewayError | None = None) -> None:
        self.name = name
        self.settings = settings or ProviderSettings(type="stub")
        self.session = session
        options = self.settings.options
        self.options: StubOptions = options if isinstance(options, StubOptions) \
            else StubOptions()
        self.operations = frozenset(self.options.operations)
        self.fail_with = fail_with
        if fail_with is None and self.options.fail_status is not None:
            self.fail_with = UpstreamError(f"{name}: failure {self.options.fail_status}",
                                           status=self.options.fail_status, provider=name)
        self.calls = 0
        self.requests: list[OperationRequest] = []

    @classmethod
    def resolve_settings(cls, name: str, settings: ProviderSettings, env: Mapping[str, str],
                         source: ConfigSource) -> ProviderSettings:
        options = build_options(cls, settings.options or {}, source, ("providers", name))
        return attrs.evolve(settings, options=options)

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        return False

    def supports_model(self, model: str) -> bool:
        return (not self.settings.models or model in self.settings.models
                or model in self.settings.model_map)

    def upstream_model(self, model: str) -> str:
        return self.settings.model_map.get(model, model)

    def static_models(self) -> list[ModelInfo]:
        return [ModelInfo(m, self.name) for m in self.settings.models]

    async def list_models(self) -> list[ModelInfo]:
        return self.static_models()

    async def check_health(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def aclose(self) -> None:
        pass

    async def _begin(self, request: OperationRequest) -> None:
        self.calls += 1
        self.requests.append(request)
        if self.options.delay:
            await asyncio.sleep(self.options.delay)
        if self.fail_with is not None:
            raise self.fail_with

    def _usage(self) -> dict[str, int]:
        words = len(self.options.reply.split())
        return {"prompt_tokens": 5, "completion_tokens": words, "total_tokens": 5 + words}

    async def chat(self, request: ChatRequest) -> ChatResponse:
        await self._begin(request)
        return ChatResponse({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1,
            "model": request.model, "provider": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": self.options.reply},
                         "finish_reason": "stop"}],
            "usage": self._usage(),
        })

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        await self._begin(request)
        head = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1,
                "model": request.model}
        yield ChatChunk({**head, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                              "finish_reason": None}]})
        for word in self.options.reply.split(" "):
            if self.options.delay:
                await asyncio.sleep(self.options.delay)
            yield ChatChunk({**head, "choices": [{"index": 0, "delta": {"content": word + " "},
                                                  "finish_reason": None}]})
        yield ChatChunk({**head, "choices": [{"index": 0, "delta": {},
                                              "finish_reason": "stop"}]})
        yield ChatChunk({**head, "choices": [], "usage": self._usage()})

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        await self._begin(request)
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(i + 1)] * self.options.dimensions}
                for i, _ in enumerate(request.inputs)]
        return EmbeddingsResponse({"object": "list", "data": data, "model": request.model,
                                   "provider": self.name,
                                   "usage": {"prompt_tokens": 2, "total_tokens": 2}})

    async def completions(self, request: CompletionsRequest) -> CompletionsResponse:
        await self._begin(request)
        return CompletionsResponse({
            "id": "cmpl-stub", "object": "text_completion", "created": 1,
            "model": request.model, "provider": self.name,
            "choices": [{"text": self.options.reply, "index": i, "logprobs": None,
                         "finish_reason": "stop"} for i, _ in enumerate(request.prompts)],
            "usage": self._usage(),
        })

    async def stream_completions(self, request: CompletionsRequest) -> AsyncIterator[ChatChunk]:
        await self._begin(request)
        head = {"id": "cmpl-stub", "object": "text_completion", "created": 1,
                "model": request.model}
        for word in self.options.reply.split(" "):
            yield ChatChunk({**head, "choices": [{"text": word + " ", "index": 0,
                                                  "logprobs": None, "finish_reason": None}]})
        yield ChatChunk({**head, "choices": [{"text": "", "index": 0, "logprobs": None,
                                              "finish_reason": "stop"}]})
        yield ChatChunk({**head, "choices": [], "usage": self._usage()})


class StubPlugin:
    """Registers :class:`StubProvider` as provider type ``stub``."""

    @staticmethod
    @hookimpl
    def register_providers(register: Any) -> None:
        register("stub", StubProvider)
