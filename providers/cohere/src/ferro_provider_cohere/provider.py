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
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelInfo,
    ProviderSettings,
)
from ferro.embeddings import embed_in_batches, text_inputs

from ferro_provider_cohere import _embed
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
                      "command-r7b-12-2024", "embed-v4.0", "embed-english-v3.0",
                      "embed-multilingual-v3.0")
    model_prefixes = ("command", "c4ai-aya", "aya", "embed-")
    Options = CohereOptions
    operations = BaseProvider.operations | {"embeddings"}
    max_embedding_batch = _embed.MAX_BATCH
    #: Statuses OpenAI clients do not know: 402 (payment required) -> 403; 498 (a
    #: deny-listed token in the request or answer) -> 400; 499 (cancelled upstream) -> 502.
    status_map = {402: 403, 498: 400, 499: 502}

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        self.chat_url = self.base_url + "/v2/chat"
        self.embed_url = self.base_url + "/v2/embed"
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

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        """``POST /v2/embed``, in batches of 96 texts; float vectors, encoded as asked."""
        texts = text_inputs(request, self.name)
        model = self.upstream_model(request.model)
        input_type = _embed.input_type(request.body, self.options.embedding_input_type)
        fields: dict[str, Any] = {"input_type": input_type, "dimensions": request.dimensions,
                                  "truncate": self.options.embedding_truncate}

        async def call(batch: list[str]) -> tuple[list[list[float]], int]:
            data = await self.request_json("POST", self.embed_url, headers=self.headers,
                                           body=_embed.embed_request(model, batch, **fields))
            return _embed.embed_answer(data, len(batch), self.name)

        return await embed_in_batches(request, texts, self.max_embedding_batch, call,
                                      provider=self.name)

    async def discover_models(self) -> list[ModelInfo] | None:
        """``GET /v1/models``, every page: the models that serve chat or embed, each with
        the operations it serves."""
        found: list[ModelInfo] = []
        params = {"page_size": "1000"}
        for _ in range(_MAX_MODEL_PAGES):
            data = await self.request_json("GET", self.base_url + "/v1/models",
                                           headers=self.headers, params=params)
            if not isinstance(data, dict):
                break
            for model in data.get("models") or ():
                if not isinstance(model, dict) or not model.get("name"):
                    continue
                ops = _embed.model_operations(model.get("endpoints"))
                if ops != ():
                    found.append(ModelInfo(str(model["name"]), self.name, operations=ops))
            token = data.get("next_page_token")
            if not token:
                break
            params = {**params, "page_token": str(token)}
        return found
