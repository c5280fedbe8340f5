"""OpenAI (api.openai.com, or any server at OPENAI_BASE_URL that speaks its API)."""

from __future__ import annotations

from ferro import OpenAICompatibleProvider


class OpenAIProvider(OpenAICompatibleProvider):
    env_api_key = "OPENAI_API_KEY"
    env_base_url = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    default_models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini")
    model_prefixes = ("gpt-", "chatgpt-", "o1", "o3", "o4", "ft:", "davinci-", "babbage-",
                      "text-", "omni-", "codex-", "computer-use-")

    def supports_model(self, model: str) -> bool:
        # A custom base URL points at an OpenAI-compatible server whose model names we
        # cannot guess: serve any model there unless `models` lists them.
        if self.base_url != self.default_base_url and not self.settings.models:
            return True
        return super().supports_model(model)
