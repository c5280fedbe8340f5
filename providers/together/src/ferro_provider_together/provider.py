"""Together AI (api.together.xyz/v1): OpenAI's chat, embeddings and legacy completions
formats, with Together's differences."""

from __future__ import annotations

from typing import Any

from ferro import (
    ChatRequest,
    CompletionsRequest,
    CompletionsResponse,
    EmbeddingsRequest,
    ModelInfo,
    OpenAICompatibleProvider,
    OperationRequest,
    embeddings,
)

from ferro_provider_together._wire import (
    completions_body,
    embeddings_body,
    served_models,
    together_body,
)


class TogetherProvider(OpenAICompatibleProvider):
    env_api_key = "TOGETHER_API_KEY"
    env_base_url = "TOGETHER_BASE_URL"
    default_base_url = "https://api.together.xyz/v1"
    default_models = ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai/gpt-oss-120b",
                      "openai/gpt-oss-20b", "deepseek-ai/DeepSeek-V3",
                      "Qwen/Qwen2.5-72B-Instruct-Turbo",
                      "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
    operations = OpenAICompatibleProvider.operations | {"embeddings"}
    #: Together's own ``POST /completions`` serves its language and chat models.
    native_completions = True
    #: Together documents no limit; 512 is the batch its integrations send (LangChain's
    #: TogetherAIEmbeddings ``batchSize`` default).
    max_embedding_batch = 512
    #: Together has no stream_options; usage rides on the last chunk anyway.
    stream_usage_option = False
    #: Together ends with "eos" (end of sequence) where OpenAI says "stop".
    finish_reasons = {"eos": "stop"}

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return together_body(super().prepare_body(request))

    def passthrough_body(self, request: OperationRequest) -> dict[str, Any]:
        body = super().passthrough_body(request)
        if isinstance(request, EmbeddingsRequest):
            embeddings.text_inputs(request, "together")  # a 400 for token arrays
            return embeddings_body(body)
        if isinstance(request, CompletionsRequest):
            return completions_body(body)
        return body

    async def completions(self, request: CompletionsRequest) -> CompletionsResponse:
        answer = await super().completions(request)
        answer.body["object"] = "text_completion"  # Together says "text.completion"
        return answer

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        return [ModelInfo(model_id, self.name, operations=operations)
                for model_id, operations in served_models(data)]
