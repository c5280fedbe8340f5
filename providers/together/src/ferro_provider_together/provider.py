"""Together AI (api.together.xyz/v1): OpenAI's chat format with Together's differences."""

from __future__ import annotations

from typing import Any

from ferro import ChatRequest, ModelInfo, OpenAICompatibleProvider

from ferro_provider_together._wire import chat_model_ids, together_body


class TogetherProvider(OpenAICompatibleProvider):
    env_api_key = "TOGETHER_API_KEY"
    env_base_url = "TOGETHER_BASE_URL"
    default_base_url = "https://api.together.xyz/v1"
    default_models = ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai/gpt-oss-120b",
                      "openai/gpt-oss-20b", "deepseek-ai/DeepSeek-V3",
                      "Qwen/Qwen2.5-72B-Instruct-Turbo",
                      "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
    #: Together has no stream_options; usage rides on the last chunk anyway.
    stream_usage_option = False
    #: Together ends with "eos" (end of sequence) where OpenAI says "stop".
    finish_reasons = {"eos": "stop"}

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return together_body(super().prepare_body(request))

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        return [ModelInfo(model_id, self.name) for model_id in chat_model_ids(data)]
