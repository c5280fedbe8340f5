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
