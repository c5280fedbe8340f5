"""DeepSeek (api.deepseek.com): OpenAI's chat format, with DeepSeek's cache usage mapped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ferro import ChatChunk, ChatRequest, ChatResponse, OpenAICompatibleProvider, UpstreamError

from ferro_provider_deepseek._wire import (
    OVERLOADED_FINISH,
    deepseek_body,
    overloaded,
    usage_with_cached_tokens,
)

_OVERLOADED = OVERLOADED_FINISH.encode()


class DeepSeekProvider(OpenAICompatibleProvider):
    env_api_key = "DEEPSEEK_API_KEY"
    env_base_url = "DEEPSEEK_BASE_URL"
    default_base_url = "https://api.deepseek.com"
    default_models = ("deepseek-v4-flash", "deepseek-v4-pro", "deepseek-chat",
                      "deepseek-reasoner")
    model_prefixes = ("deepseek-",)

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return deepseek_body(super().prepare_body(request))

    async def chat(self, request: ChatRequest) -> ChatResponse:
        response = await super().chat(request)
        body = response.body
        if overloaded(body["choices"]):
            raise self._overloaded()
        if isinstance(body.get("usage"), dict):
            usage_with_cached_tokens(body["usage"])
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with contextlib.aclosing(super().stream(request)) as chunks:
            async for chunk in chunks:
                raw = chunk.raw or b""
                if _OVERLOADED in raw and overloaded(chunk.as_dict().get("choices") or []):
                    raise self._overloaded()
                if b"prompt_cache_hit_tokens" in raw and chunk.carries_usage():
                    data = chunk.as_dict()
                    if usage_with_cached_tokens(data["usage"]):
                        chunk = ChatChunk(data)
                yield chunk

    def _overloaded(self) -> UpstreamError:
        return UpstreamError(
            f"{self.name}: the answer was cut short: DeepSeek ran out of capacity "
            f"(finish_reason {OVERLOADED_FINISH})",
            status=503, provider=self.name, code="upstream_overloaded", retryable=True)
