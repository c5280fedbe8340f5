"""OpenAI (api.openai.com, or any server at OPENAI_BASE_URL that speaks its API): chat,
embeddings and legacy completions, each passed through to its own endpoint."""

from __future__ import annotations

from ferro import OpenAICompatibleProvider


class OpenAIProvider(OpenAICompatibleProvider):
    env_api_key = "OPENAI_API_KEY"
    env_base_url = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    default_models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini",
                      "text-embedding-3-small", "text-embedding-3-large",
                      "gpt-3.5-turbo-instruct")
    #: ``text-`` covers the embedding models (``text-embedding-3-small``...); ``gpt-``,
    #: ``davinci-`` and ``babbage-`` the legacy completion models.
    model_prefixes = ("gpt-", "chatgpt-", "o1", "o3", "o4", "ft:", "davinci-", "babbage-",
                      "text-", "omni-", "codex-", "computer-use-")
    operations = OpenAICompatibleProvider.operations | {"embeddings"}
    #: ``POST /completions`` is OpenAI's own (gpt-3.5-turbo-instruct, davinci-002...).
    native_completions = True
    #: "any array must be 2048 dimensions or less" (the embeddings ``input`` reference).
    max_embedding_batch = 2048
