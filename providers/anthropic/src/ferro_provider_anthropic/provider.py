"""Anthropic (api.anthropic.com, or any server at ANTHROPIC_BASE_URL that speaks the
Messages API). I/O only: the translation is in ``_wire`` and ``_stream``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
from ferro import (
    BaseProvider,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ModelInfo,
    ProviderSettings,
    UpstreamError,
    wire,
)

from ferro_provider_anthropic._stream import StreamState
from ferro_provider_anthropic._wire import chat_completion, event_error, messages_request
from ferro_provider_anthropic.config import AnthropicOptions

#: The ``anthropic-version`` header (override it with ``headers`` in the config).
API_VERSION = "2023-06-01"


class AnthropicProvider(BaseProvider):
    env_api_key = "ANTHROPIC_API_KEY"
    env_base_url = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    default_models = ("claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5",
                      "claude-opus-4-6", "claude-sonnet-4-5", "claude-opus-4-5",
                      "claude-opus-4-1")
    model_prefixes = ("claude-",)
    Options = AnthropicOptions
    #: Pages of ``GET /v1/models`` (1000 models each) that discovery reads at most.
    max_model_pages = 5

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        if self.base_url.endswith("/v1"):  # the API paths carry /v1 themselves
            self.base_url = self.base_url[:-3]
        self.headers = {
            "content-type": "application/json",
            "anthropic-version": API_VERSION,
            "x-api-key": self.api_key,
            # configured headers (anthropic-beta, a newer anthropic-version…) win
            **{key.lower(): value for key, value in settings.headers.items()},
        }
        self.stream_headers = {**self.headers, "accept": "text/event-stream"}
        self.messages_url = self.base_url + "/v1/messages"
        self.models_url = self.base_url + "/v1/models"

    def native_body(self, request: ChatRequest) -> dict[str, Any]:
        body = request.body
        return messages_request(body, model=self.upstream_model(body["model"]),
                                default_max_tokens=self.options.default_max_tokens)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        native = self.native_body(request)
        native.pop("stream", None)
        data = await self.request_json("POST", self.messages_url, body=native,
                                       headers=self.headers)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamError(
                f"{self.name} answered without content: {str(data)[:200]}",
                status=502, provider=self.name, code="invalid_upstream_response", retryable=True)
        return ChatResponse(chat_completion(data, model=request.model, provider=self.name,
                                            json_mode=_json_mode(request.body)))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        native = self.native_body(request)
        native["stream"] = True
        state = StreamState(request.model, json_mode=_json_mode(request.body))
        fallback_id, created = wire.new_id(), int(time.time())
        async with self.open_stream(self.messages_url, body=native,
                                    headers=self.stream_headers) as resp:
            async for event, data in self.sse_events(resp):
                if data is None:
                    continue
                payload = self.decode_json(data)
                if not isinstance(payload, dict):
                    continue
                kind = payload.get("type") or event
                if kind == "message_stop":
                    rid = state.id or fallback_id
                    delta, finish = state.finish()
                    yield self.response_chunk(rid, state.model, created, delta, finish)
                    yield self.usage_chunk(rid, state.model, created, state.openai_usage())
                    return
                if kind == "error" or event == "error":
                    raise event_error(payload, self.name)
                delta = state.feed(payload)
                if delta is not None:
                    yield self.response_chunk(state.id or fallback_id, state.model, created,
                                              delta)
        raise self.truncated("message_stop")

    async def discover_models(self) -> list[ModelInfo] | None:
        """``GET /v1/models``, following ``has_more`` / ``last_id`` pages."""
        models: list[ModelInfo] = []
        params = {"limit": "1000"}
        for _ in range(self.max_model_pages):
            data = await self.request_json("GET", self.models_url, headers=self.headers,
                                           params=params)
            if not isinstance(data, dict):
                break
            models += [ModelInfo(str(m["id"]), self.name, _unix(m.get("created_at")))
                       for m in data.get("data") or () if isinstance(m, dict) and "id" in m]
            if not (data.get("has_more") and data.get("last_id")):
                break
            params = {"limit": "1000", "after_id": str(data["last_id"])}
        return models


def _json_mode(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def _unix(timestamp: Any) -> int:
    """An RFC 3339 ``created_at`` as Unix seconds (0 when absent or unreadable)."""
    try:
        return int(datetime.fromisoformat(str(timestamp)).timestamp())
    except ValueError:
        return 0
