"""Groq (api.groq.com/openai/v1): OpenAI's chat format, minus what Groq rejects."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ferro import ChatChunk, ChatRequest, OpenAICompatibleProvider, UpstreamError

from ferro_provider_groq._wire import groq_body, x_groq_error

#: Groq's own status for "flex tier capacity exceeded" (https://console.groq.com/docs/flex-processing).
_FLEX_CAPACITY_EXCEEDED = 498


class GroqProvider(OpenAICompatibleProvider):
    env_api_key = "GROQ_API_KEY"
    env_base_url = "GROQ_BASE_URL"
    default_base_url = "https://api.groq.com/openai/v1"
    default_models = ("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b",
                      "openai/gpt-oss-20b")

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return groq_body(super().prepare_body(request))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with contextlib.aclosing(super().stream(request)) as chunks:
            async for chunk in chunks:
                # x_groq rides only on the first and the last chunk: a cheap byte test first.
                if chunk.raw is not None and b'"x_groq"' in chunk.raw:
                    error = x_groq_error(chunk.as_dict())
                    if error:
                        raise UpstreamError(f"{self.name}: {error}", status=502,
                                            provider=self.name, code="stream_error",
                                            retryable=True)
                yield chunk

    def upstream_error(self, status: int, raw: bytes,
                       headers: Mapping[str, str] | None = None) -> UpstreamError:
        if status == _FLEX_CAPACITY_EXCEEDED:  # not a status OpenAI clients know: a 503
            error = super().upstream_error(503, raw, headers)
            error.code = "upstream_overloaded"
            return error
        return super().upstream_error(status, raw, headers)
