"""Ollama (OLLAMA_HOST, default http://localhost:11434): POST {host}/v1/chat/completions,
and POST {host}/api/embed for embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from ferro import (
    ChatRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelInfo,
    OpenAICompatibleProvider,
    ProviderSettings,
)
from ferro.embeddings import embed_in_batches, text_inputs

from ferro_provider_ollama._wire import (
    embed_answer,
    embed_request,
    host_url,
    model_names,
    ollama_body,
)
from ferro_provider_ollama.config import OllamaOptions


class OllamaProvider(OpenAICompatibleProvider):
    env_api_key = None  # a local server needs no key (a configured api_key is still sent)
    env_base_url = "OLLAMA_HOST"
    default_base_url = "http://localhost:11434"
    default_models = ("llama3.2", "gpt-oss:20b", "qwen3:8b")
    chat_path = "/v1/chat/completions"
    #: Where an OpenAI-compatible server on a custom host has the legacy endpoint. On its
    #: default host, completions go through chat: Ollama's own /v1/completions takes only a
    #: single string prompt.
    completions_path = "/v1/completions"
    models_path = "/api/tags"  # native: lists the models pulled on this server
    version_path = "/api/version"
    embeddings_path = "/api/embed"  # native: it takes dimensions and truncate
    operations = OpenAICompatibleProvider.operations | {"embeddings"}
    Options = OllamaOptions

    def __init__(self, name: str, settings: ProviderSettings,
                 session: aiohttp.ClientSession | None) -> None:
        super().__init__(name, settings, session)
        self.base_url = host_url(self.base_url)

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        return bool(env.get("OLLAMA_HOST"))

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return ollama_body(super().prepare_body(request))

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        """``POST /api/embed`` with every text (Ollama documents no batch limit)."""
        texts = text_inputs(request, self.name)
        model = self.upstream_model(request.model)
        url = self.url(self.embeddings_path, model)
        dimensions = request.dimensions

        async def call(batch: list[str]) -> tuple[list[list[float]], int]:
            body = embed_request(model, batch, truncate=self.options.embedding_truncate,
                                 dimensions=dimensions)
            data = await self.request_json("POST", url, body=body, headers=self.headers)
            return embed_answer(data, len(batch), self.name, dimensions)

        return await embed_in_batches(request, texts, self.max_embedding_batch, call,
                                      provider=self.name)

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        return [ModelInfo(name, self.name) for name in model_names(data)]

    async def check_health(self) -> None:
        """``GET /api/version``: answers without loading a model."""
        await self.request_json("GET", self.base_url + self.version_path, headers=self.headers)
