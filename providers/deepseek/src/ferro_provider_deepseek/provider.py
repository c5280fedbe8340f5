"""DeepSeek (api.deepseek.com): OpenAI's chat format, with DeepSeek's cache usage mapped."""

from __future__ import annotations

from typing import Any

from ferro import ChatRequest, OpenAICompatibleProvider, json_tool

from ferro_provider_deepseek._wire import OVERLOADED_FINISH, deepseek_body, usage_with_cached_tokens


class DeepSeekProvider(OpenAICompatibleProvider):
    env_api_key = "DEEPSEEK_API_KEY"
    env_base_url = "DEEPSEEK_BASE_URL"
    default_base_url = "https://api.deepseek.com"
    default_models = ("deepseek-v4-flash", "deepseek-v4-pro", "deepseek-chat",
                      "deepseek-reasoner")
    model_prefixes = ("deepseek-",)
    failed_finish_reasons = {OVERLOADED_FINISH: (503, "DeepSeek ran out of capacity")}
    chunk_markers = (b"prompt_cache_hit_tokens",)

    def emulates_json_schema(self, request: ChatRequest) -> bool:
        # DeepSeek has JSON mode but no json_schema: emulated with a forced tool.
        return json_tool.wanted(request.body)

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return deepseek_body(super().prepare_body(request))

    def adapt_response(self, body: dict[str, Any]) -> None:
        super().adapt_response(body)
        if isinstance(body.get("usage"), dict):
            usage_with_cached_tokens(body["usage"])

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        self.adapt_response(data)
        return data
