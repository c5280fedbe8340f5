"""Google's Gemini API (generativelanguage.googleapis.com, or GEMINI_BASE_URL): the I/O.
Translation lives in ``_wire`` (request), ``_answer`` (response, stream) and ``_errors``."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from ferro import (
    BaseProvider,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    InvalidRequestError,
    ModelInfo,
    ProviderSettings,
    UpstreamError,
)
from ferro.embeddings import embed_in_batches, embeddings_response, text_inputs

from ferro_provider_gemini import _embed
from ferro_provider_gemini._answer import StreamTranslator, to_chat_completion
from ferro_provider_gemini._errors import error_facts, error_of
from ferro_provider_gemini._wire import to_gemini
from ferro_provider_gemini.config import GeminiOptions

_MAX_MODEL_PAGES = 20
_MODEL_PATH = re.compile(r"^(?:models|tunedModels)/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class GeminiProvider(BaseProvider):
    env_api_key = "GEMINI_API_KEY"
    env_base_url = "GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com"
    default_models = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
                      "gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-embedding-001")
    model_prefixes = ("gemini-", "gemma-", "text-embedding-")
    Options = GeminiOptions
    operations = BaseProvider.operations | {"embeddings"}
    max_embedding_batch = _embed.MAX_BATCH

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        version = self.options.api_version.strip("/")
        # Accept a base URL given with the version already on it (".../v1beta").
        self.api_url = (self.base_url if self.base_url.endswith("/" + version)
                        else f"{self.base_url}/{version}")
        # The key goes in a header, never in the URL: URLs end up in logs.
        self.headers = {"Content-Type": "application/json", "x-goog-api-key": self.api_key,
                        **settings.headers}

    def supports_model(self, model: str) -> bool:
        return super().supports_model(model.removeprefix("models/"))

    @staticmethod
    def _model_path(model: str) -> str:
        path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        if not _MODEL_PATH.match(path):  # the name becomes a URL path segment: no "..", "/"
            raise InvalidRequestError(f"{model!r} is not a Gemini model name", param="model")
        return path

    def _model_url(self, model: str, method: str) -> str:
        return f"{self.api_url}/{self._model_path(model)}:{method}"

    def _native(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        model = self.upstream_model(request.model)
        body = to_gemini(request.body, provider=self.name, model=model,
                         schema_mode=self.options.schema_mode,
                         safety_settings=self.options.safety_settings)
        return model, body

    @staticmethod
    def _single_call(request: ChatRequest) -> bool:
        return request.body.get("parallel_tool_calls") is False

    async def chat(self, request: ChatRequest) -> ChatResponse:
        model, body = self._native(request)
        data = await self.request_json("POST", self._model_url(model, "generateContent"),
                                       body=body, headers=self.headers)
        return ChatResponse(to_chat_completion(
            data, model=request.model, provider=self.name, n=request.body.get("n") or 1,
            single_call=self._single_call(request)))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        model, body = self._native(request)
        translator = StreamTranslator(model=request.model, provider=self.name,
                                      created=int(time.time()), n=request.body.get("n") or 1,
                                      single_call=self._single_call(request))
        url = self._model_url(model, "streamGenerateContent")
        async with self.open_stream(url, body=body, headers=self.headers,
                                    params={"alt": "sse"}) as resp:
            async for _, data in self.sse_events(resp):
                if not data:
                    continue
                payload = self.decode_json(data)
                if error_of(payload) is not None:
                    raise self.upstream_error(200, data)
                if not isinstance(payload, dict):
                    raise UpstreamError(f"{self.name} streamed something other than a "
                                        f"GenerateContentResponse: {data[:200]!r}",
                                        status=502, provider=self.name,
                                        code="invalid_upstream_response", retryable=True)
                for chunk in translator.feed(payload):
                    yield chunk
        if not translator.complete:
            raise self.truncated("finishReason")
        usage = translator.usage_chunk()
        if usage is not None:
            yield usage

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        """One input: ``embedContent``; several: ``batchEmbedContents``, in batches of 100."""
        texts = text_inputs(request, self.name)
        path = self._model_path(self.upstream_model(request.model))
        task_type = _embed.task_type(request.body, self.options.embedding_task_type)
        fields: dict[str, Any] = {"task_type": task_type, "dimensions": request.dimensions}
        if len(texts) == 1:
            data = await self.request_json(
                "POST", f"{self.api_url}/{path}:embedContent", headers=self.headers,
                body=_embed.embed_request(path, texts[0], **fields))
            vectors, tokens = _embed.single_answer(data, self.name)
            return embeddings_response(request, vectors, provider=self.name,
                                       prompt_tokens=tokens)
        url = f"{self.api_url}/{path}:batchEmbedContents"

        async def call(batch: list[str]) -> tuple[list[list[float]], int]:
            data = await self.request_json(
                "POST", url, headers=self.headers,
                body=_embed.batch_request(path, batch, **fields))
            return _embed.batch_answer(data, len(batch), self.name)

        return await embed_in_batches(request, texts, self.max_embedding_batch, call,
                                      provider=self.name)

    def upstream_error(
        self, status: int, raw: bytes, headers: Mapping[str, str] | None = None
    ) -> UpstreamError:
        """The kernel's mapping, corrected by what Gemini's error body says: a bad key is a
        401 (Gemini sends 400), ``RetryInfo`` becomes Retry-After, Gemini's wording of a
        too-long prompt is ``context_length_exceeded``."""
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        facts = error_facts(status, payload)
        error = super().upstream_error(facts.status, raw, headers)
        if facts.code:
            error.code = facts.code
            error.retryable = False
        if facts.retry_after and "Retry-After" not in error.headers:
            error.headers["Retry-After"] = facts.retry_after
        return error

    async def discover_models(self) -> list[ModelInfo] | None:
        """``GET {base}/v1beta/models``, every page; the models that can generateContent or
        embedContent, each with the operations it serves."""
        models: list[ModelInfo] = []
        token = None
        for _ in range(_MAX_MODEL_PAGES):
            params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
            data = await self.request_json("GET", f"{self.api_url}/models",
                                           headers=self.headers, params=params)
            if not isinstance(data, dict):
                break
            for item in data.get("models") or ():
                if not isinstance(item, dict) or not item.get("name"):
                    continue
                ops = _embed.model_operations(item.get("supportedGenerationMethods"))
                if ops == ():
                    continue
                models.append(ModelInfo(str(item["name"]).removeprefix("models/"), self.name,
                                        operations=ops))
            token = data.get("nextPageToken")
            if not token:
                break
        return models
