"""Groq (api.groq.com/openai/v1): OpenAI's chat format, minus what Groq rejects."""

from __future__ import annotations

from typing import Any, ClassVar

from ferro import (
    ChatRequest,
    OpenAICompatibleProvider,
    UpstreamError,
    json_tool,
)

from ferro_provider_groq._wire import groq_body, x_groq_error
from ferro_provider_groq.config import GroqOptions


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
    Options = GroqOptions
    #: Models with Groq's own ``json_schema`` structured outputs
    #: (https://console.groq.com/docs/structured-outputs); the ``json_schema_models`` config
    #: key adds more. Other models get it emulated with a forced tool.
    json_schema_models: ClassVar[frozenset[str]] = frozenset({
        "openai/gpt-oss-20b", "openai/gpt-oss-120b", "openai/gpt-oss-safeguard-20b",
        "qwen/qwen3.8-27b"})
    #: Groq's structured outputs do not stream: a streamed json_schema request is emulated
    #: on every model.
    json_schema_streams: ClassVar[bool] = False

    def native_json_schema(self, request: ChatRequest) -> bool:
        """Whether Groq itself serves this request's ``json_schema`` (model and mode)."""
        if request.stream and not self.json_schema_streams:
            return False
        model = self.upstream_model(request.model)
        return model in self.json_schema_models or model in self.options.json_schema_models

    def emulates_json_schema(self, request: ChatRequest) -> bool:
        return json_tool.wanted(request.body) and not self.native_json_schema(request)

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return groq_body(super().prepare_body(request))

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        error = x_groq_error(data)
        if error:
            raise UpstreamError(f"{self.name}: {error}", status=502, provider=self.name,
                                code="stream_error", retryable=True)
        return super().adapt_chunk(data)
