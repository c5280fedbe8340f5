"""Groq (api.groq.com/openai/v1): OpenAI's chat format, minus what Groq rejects."""

from __future__ import annotations

from typing import Any

from ferro import ChatRequest, OpenAICompatibleProvider, UpstreamError

from ferro_provider_groq._wire import groq_body, x_groq_error


class GroqProvider(OpenAICompatibleProvider):
    env_api_key = "GROQ_API_KEY"
    env_base_url = "GROQ_BASE_URL"
    default_base_url = "https://api.groq.com/openai/v1"
    default_models = ("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b",
                      "openai/gpt-oss-20b")
    #: x_groq rides only on the first and the last chunk; it may carry an error.
    chunk_markers = (b'"x_groq"',)
    #: 498 is Groq's "flex tier capacity exceeded" (https://console.groq.com/docs/flex-processing).
    status_map = {**OpenAICompatibleProvider.status_map, 498: 503}

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return groq_body(super().prepare_body(request))

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        error = x_groq_error(data)
        if error:
            raise UpstreamError(f"{self.name}: {error}", status=502, provider=self.name,
                                code="stream_error", retryable=True)
        return data
