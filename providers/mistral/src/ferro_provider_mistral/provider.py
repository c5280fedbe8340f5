"""Mistral AI (api.mistral.ai/v1): OpenAI's chat format with Mistral's names and limits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ferro import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    OpenAICompatibleProvider,
    UpstreamError,
)

from ferro_provider_mistral._wire import error_detail, mistral_body, normalise_finish


class MistralProvider(OpenAICompatibleProvider):
    env_api_key = "MISTRAL_API_KEY"
    env_base_url = "MISTRAL_BASE_URL"
    default_base_url = "https://api.mistral.ai/v1"
    default_models = ("mistral-large-latest", "mistral-medium-latest", "mistral-small-latest",
                      "magistral-medium-latest", "magistral-small-latest", "codestral-latest",
                      "devstral-medium-latest", "ministral-8b-latest", "pixtral-large-latest")
    model_prefixes = ("mistral-", "codestral-", "open-mistral-", "open-mixtral-",
                      "open-codestral-", "pixtral-", "ministral-", "magistral-", "devstral-",
                      "voxtral-")
    #: Mistral rejects stream_options; it sends usage on the last chunk anyway.
    stream_usage_option = False

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return mistral_body(super().prepare_body(request))

    async def chat(self, request: ChatRequest) -> ChatResponse:
        response = await super().chat(request)
        if normalise_finish(response.body["choices"]) == "error":
            raise self._generation_error()
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with contextlib.aclosing(super().stream(request)) as chunks:
            async for chunk in chunks:
                raw = chunk.raw
                if raw is not None and (b"model_length" in raw or b'"error"' in raw):
                    data = chunk.as_dict()
                    if data.get("object") == "error":  # Mistral's error body, mid-stream
                        raise self.stream_error(raw)
                    outcome = normalise_finish(data.get("choices") or [])
                    if outcome == "error":
                        raise self._generation_error()
                    if outcome:
                        chunk = ChatChunk(data)
                yield chunk

    def _generation_error(self) -> UpstreamError:
        return UpstreamError(f"{self.name}: the model stopped with finish_reason 'error'",
                             status=502, provider=self.name, code="upstream_error",
                             retryable=True)

    def error_message(self, payload: Any) -> str | None:
        return error_detail(payload) or super().error_message(payload)

    def upstream_error(self, status: int, raw: bytes,
                       headers: Mapping[str, str] | None = None) -> UpstreamError:
        # Mistral answers a request its schema rejects with 422; OpenAI clients expect 400.
        return super().upstream_error(400 if status == 422 else status, raw, headers)
