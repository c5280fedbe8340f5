"""Ollama's own config keys (beside the common ``base_url``, ``api_key``, ``timeout`` ...)."""

from __future__ import annotations

import attrs


@attrs.define
class OllamaOptions:
    #: Ollama's ``truncate`` for embeddings. False: an input longer than the model's context
    #: is a 400, as with OpenAI. True: Ollama cuts the end of the input to fit (its default).
    embedding_truncate: bool = False
