"""Mistral AI (api.mistral.ai/v1): OpenAI's chat format with Mistral's names and limits."""

from __future__ import annotations

from typing import Any

import orjson
from ferro import ChatRequest, OpenAICompatibleProvider

from ferro_provider_mistral._wire import FINISH_REASONS, error_detail, mistral_body


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
    finish_reasons = FINISH_REASONS
    failed_finish_reasons = {"error": (502, "the model stopped with an error")}
    chunk_markers = (b'"object":"error"',)
    #: Mistral answers a request its schema rejects with 422; OpenAI clients expect 400.
    status_map = {**OpenAICompatibleProvider.status_map, 422: 400}

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return mistral_body(super().prepare_body(request))

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        if data.get("object") == "error":  # Mistral's error body, mid-stream
            raise self.stream_error(orjson.dumps(data))
        return super().adapt_chunk(data)

    def error_message(self, payload: Any) -> str | None:
        return error_detail(payload) or super().error_message(payload)
