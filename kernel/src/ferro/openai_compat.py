"""``OpenAICompatibleProvider``: the OpenAI wire format, shared by every provider that
speaks it (OpenAI itself, Groq, Together, Mistral, DeepSeek, Azure OpenAI, Ollama's /v1).

Requests pass through whole: every field the client sent reaches the upstream (tools,
response_format, stream_options, fields this gateway has never heard of), with only the
model name mapped. Streams are relayed chunk by chunk without re-encoding. Subclasses
change what truly differs: :meth:`chat_url`, :meth:`auth_headers`, :meth:`prepare_body`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp

from ferro.config import ProviderSettings
from ferro.errors import UpstreamError
from ferro.provider import BaseProvider
from ferro.sse import iter_sse
from ferro.types import ChatChunk, ChatRequest, ChatResponse, ModelInfo

__all__ = ["OpenAICompatibleProvider"]


class OpenAICompatibleProvider(BaseProvider):
    chat_path: ClassVar[str] = "/chat/completions"
    models_path: ClassVar[str] = "/models"
    #: Whether the upstream understands ``stream_options.include_usage``.
    stream_usage_option: ClassVar[bool] = True

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        self.headers = {
            "Content-Type": "application/json",
            **self.auth_headers(),
            **settings.headers,
        }
        self.stream_headers = {**self.headers, "Accept": "text/event-stream"}

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def chat_url(self, model: str) -> str:
        return self.base_url + self.chat_path

    def models_url(self) -> str:
        return self.base_url + self.models_path

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        """The upstream request body: the client's, with the model mapped and, for streams,
        usage always requested (the gateway needs it even when the client did not ask)."""
        body = request.body
        model = self.upstream_model(body["model"])
        if model != body["model"]:
            body = {**body, "model": model}
        if body.get("stream") and self.stream_usage_option and not request.include_usage:
            body = {**body, "stream_options": {**(body.get("stream_options") or {}),
                                               "include_usage": True}}
        return body

    async def chat(self, request: ChatRequest) -> ChatResponse:
        body = self.prepare_body(request)
        data = await self.request_json("POST", self.chat_url(body["model"]), body=body,
                                       headers=self.headers)
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError(
                f"{self.name} answered without choices: {str(data)[:200]}",
                status=502, provider=self.name, code="invalid_upstream_response", retryable=True,
            )
        data["provider"] = self.name
        return ChatResponse(data)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        body = self.prepare_body(request)
        async with self.open_stream(self.chat_url(body["model"]), body=body,
                                    headers=self.stream_headers) as resp:
            async for event, data in iter_sse(resp.content):
                if data is None:
                    continue
                if data == b"[DONE]":
                    return
                if event == "error" or data.startswith(b'{"error"'):
                    raise self.stream_error(data)
                yield ChatChunk(raw=data)
        raise self.truncated("[DONE]")

    def stream_error(self, data: bytes) -> UpstreamError:
        payload = self.decode_json(data)
        message = self.error_message(payload) or data[:300].decode("utf-8", "replace")
        return UpstreamError(f"{self.name}: {message}", status=502, provider=self.name,
                             code="stream_error", retryable=True)

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        items = data.get("data") if isinstance(data, dict) else data
        return [ModelInfo(str(m["id"]), self.name) for m in items or [] if isinstance(m, dict)
                and "id" in m]
