"""Mistral AI (api.mistral.ai/v1): OpenAI's chat format with Mistral's names and limits,
and Mistral's embeddings."""

from __future__ import annotations

from typing import Any

import orjson
from ferro import (
    ChatRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    OpenAICompatibleProvider,
    embeddings,
)

from ferro_provider_mistral._embed import MAX_INPUTS, embeddings_body
from ferro_provider_mistral._wire import (
    FINISH_REASONS,
    error_detail,
    mistral_body,
    openai_logprobs,
)


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
    operations = OpenAICompatibleProvider.operations | {"embeddings"}
    max_embedding_batch = MAX_INPUTS
    #: Mistral rejects stream_options; it sends usage on the last chunk anyway.
    stream_usage_option = False
    finish_reasons = FINISH_REASONS
    failed_finish_reasons = {"error": (502, "the model stopped with an error")}
    #: An error body mid-stream; ``token_id`` marks the chunks that carry log probabilities.
    chunk_markers = (b'"object":"error"', b'"token_id"')
    #: Mistral answers a request its schema rejects with 422; OpenAI clients expect 400.
    status_map = {**OpenAICompatibleProvider.status_map, 422: 400}

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return mistral_body(super().prepare_body(request))

    def adapt_response(self, body: dict[str, Any]) -> None:
        super().adapt_response(body)
        openai_logprobs(body.get("choices"))

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        if data.get("object") == "error":  # Mistral's error body, mid-stream
            raise self.stream_error(orjson.dumps(data))
        adapted = super().adapt_chunk(data)
        if adapted is not None:
            openai_logprobs(adapted.get("choices"))
        return adapted

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        embeddings.text_inputs(request, self.name)
        response = await super().embeddings(EmbeddingsRequest(embeddings_body(request.body)))
        embeddings.encode_as_asked(request, response.body)  # Mistral was asked for floats
        return response

    def error_message(self, payload: Any) -> str | None:
        return error_detail(payload) or super().error_message(payload)
