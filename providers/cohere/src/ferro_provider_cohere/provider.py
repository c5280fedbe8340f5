"""Cohere (api.cohere.com, or a Cohere-compatible deployment at COHERE_BASE_URL): I/O only.
Translation lives in ``_wire.py`` (requests, answers) and ``_stream.py`` (streams)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from ferro import (
    BaseProvider,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ModelInfo,
    ProviderSettings,
)

from ferro_provider_cohere._stream import StreamTranslator
from ferro_provider_cohere._wire import build_request, completion
from ferro_provider_cohere.config import CohereOptions

#: Pages of ``GET /v1/models`` read at most (1000 models each).
_MAX_MODEL_PAGES = 10


class CohereProvider(BaseProvider):
    env_api_key = "COHERE_API_KEY"
    env_base_url = "COHERE_BASE_URL"
    default_base_url = "https://api.cohere.com"
    default_models = ("command-a-03-2025", "command-a-reasoning-08-2025",
                      "command-a-vision-07-2025", "command-r-plus-08-2024", "command-r-08-2024",
                      "command-r7b-12-2024")
    model_prefixes = ("command", "c4ai-aya", "aya")
    Options = CohereOptions
    #: Statuses OpenAI clients do not know: 402 (payment required) -> 403; 498 (a
    #: deny-listed token in the request or answer) -> 400; 499 (cancelled upstream) -> 502.
    status_map = {402: 403, 498: 400, 499: 502}

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        self.chat_url = self.base_url + "/v2/chat"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "Authorization": f"Bearer {self.api_key}", **settings.headers}
        self.stream_headers = {**self.headers, "Accept": "text/event-stream"}

    def _prepare(self, request: ChatRequest, stream: bool) -> tuple[dict[str, Any], str,
                                                                    int | None]:
        model = self.upstream_model(request.model)
        body = build_request(request.body, model, self.name, stream=stream,
                             safety_mode=self.options.safety_mode)
        single = request.body.get("parallel_tool_calls") is False
        return body, model, 1 if single else None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        body, model, max_calls = self._prepare(request, stream=False)
        data = await self.request_json("POST", self.chat_url, body=body, headers=self.headers)
        return ChatResponse(completion(data, model, self.name, max_tool_calls=max_calls))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        body, model, max_calls = self._prepare(request, stream=True)
        translator = StreamTranslator(model, self.name, max_tool_calls=max_calls)
        async with self.open_stream(self.chat_url, body=body,
                                    headers=self.stream_headers) as resp:
            async for event in self.iter_events(resp):
                for chunk in translator.feed(event):
                    yield chunk
                if translator.done:
                    return
        raise self.truncated("message-end")

    async def discover_models(self) -> list[ModelInfo] | None:
        """``GET /v1/models?endpoint=chat``: the models that serve chat, every page."""
        found: list[ModelInfo] = []
        params = {"endpoint": "chat", "page_size": "1000"}
        for _ in range(_MAX_MODEL_PAGES):
            data = await self.request_json("GET", self.base_url + "/v1/models",
                                           headers=self.headers, params=params)
            if not isinstance(data, dict):
                break
            for model in data.get("models") or ():
                endpoints = model.get("endpoints") if isinstance(model, dict) else None
                if isinstance(model, dict) and model.get("name") and (
                        endpoints is None or "chat" in endpoints):
                    found.append(ModelInfo(str(model["name"]), self.name))
            token = data.get("next_page_token")
            if not token:
                break
            params = {**params, "page_token": str(token)}
        return found
