"""Ollama (OLLAMA_HOST, default http://localhost:11434): POST {host}/v1/chat/completions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from ferro import ChatRequest, ModelInfo, OpenAICompatibleProvider, ProviderSettings

from ferro_provider_ollama._wire import host_url, model_names, ollama_body


class OllamaProvider(OpenAICompatibleProvider):
    env_api_key = None  # a local server needs no key (a configured api_key is still sent)
    env_base_url = "OLLAMA_HOST"
    default_base_url = "http://localhost:11434"
    default_models = ("llama3.2", "gpt-oss:20b", "qwen3:8b")
    chat_path = "/v1/chat/completions"
    models_path = "/api/tags"  # native: lists the models pulled on this server
    version_path = "/api/version"

    def __init__(self, name: str, settings: ProviderSettings,
                 session: aiohttp.ClientSession | None) -> None:
        super().__init__(name, settings, session)
        self.base_url = host_url(self.base_url)

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        return bool(env.get("OLLAMA_HOST"))

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        return ollama_body(super().prepare_body(request))

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        return [ModelInfo(name, self.name) for name in model_names(data)]

    async def check_health(self) -> None:
        """``GET /api/version``: answers without loading a model."""
        await self.request_json("GET", self.base_url + self.version_path, headers=self.headers)
