"""``OpenAICompatibleProvider``: the OpenAI wire format, shared by every provider that
speaks it (OpenAI itself, Groq, Together, Mistral, DeepSeek, Azure OpenAI, Ollama's /v1).

Requests pass through whole: every field the client sent reaches the upstream (tools,
response_format, stream_options, fields this gateway has never heard of), with only the
model name mapped. Streams are relayed chunk by chunk without re-encoding. Subclasses
change what truly differs: :meth:`url`, :meth:`auth_headers`, :meth:`prepare_body`.

Embeddings (for subclasses that list ``"embeddings"`` in ``operations``) are passed through
too, split into batches of ``max_embedding_batch`` inputs and merged back. Legacy
completions go to the upstream's own ``/completions`` when ``native_completions`` is set or
the base URL is a custom one (an OpenAI-compatible server), else through chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, TypeVar

import aiohttp

from ferro import json_tool
from ferro.config import ProviderSettings
from ferro.embeddings import encode_as_asked, in_batches, merge_embeddings
from ferro.errors import UpstreamError
from ferro.operations import (
    Answer,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    CompletionsResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    OperationRequest,
    RawFrames,
    provider_field,
)
from ferro.provider import BaseProvider
from ferro.sse import split_events
from ferro.types import ModelInfo

__all__ = ["OpenAICompatibleProvider"]

A = TypeVar("A", bound=Answer)


def _floats_in(raw: bytes) -> bool:
    """Whether an embeddings answer's first vector is a list of floats (not base64)."""
    at = raw.find(b'"embedding":')  # the key ("object": "embedding" is a value)
    return at >= 0 and raw[at + 12:at + 40].lstrip()[:1] == b"["


class OpenAICompatibleProvider(BaseProvider):
    chat_path: ClassVar[str] = "/chat/completions"
    completions_path: ClassVar[str] = "/completions"
    embeddings_path: ClassVar[str] = "/embeddings"
    models_path: ClassVar[str] = "/models"
    #: Whether the default upstream has OpenAI's legacy ``/completions`` endpoint.
    native_completions: ClassVar[bool] = False
    #: Whether the upstream understands ``stream_options.include_usage`` (when it does not,
    #: ``stream_options`` is left out; such upstreams send usage on their last chunk).
    stream_usage_option: ClassVar[bool] = True
    #: Finish reasons the upstream names differently from OpenAI (``{"eos": "stop"}``).
    finish_reasons: ClassVar[Mapping[str, str]] = {}
    #: Finish reasons that mean the answer failed -> (status, what happened): raised as a
    #: retryable UpstreamError, so the strategy may try again or elsewhere.
    failed_finish_reasons: ClassVar[Mapping[str, tuple[int, str]]] = {}
    #: Bytes that mark a stream chunk :meth:`adapt_chunk` must see; every other chunk is
    #: relayed without being parsed. Both finish-reason tables' keys are added automatically.
    chunk_markers: ClassVar[tuple[bytes, ...]] = ()

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        super().__init__(name, settings, session)
        self.headers = {
            "Content-Type": "application/json",
            **self.auth_headers(),
            **settings.headers,
        }
        self.stream_headers = {**self.headers, "Accept": "text/event-stream"}
        self._markers: tuple[bytes, ...] = self.chunk_markers + tuple(
            b'"' + reason.encode() + b'"'
            for reason in (*self.finish_reasons, *self.failed_finish_reasons))
        self._provider_field = provider_field(name)
        # A whole answer is parsed only when a subclass adapts answers itself, or when it
        # holds a finish reason this provider renames.
        self._adapts_answers = type(self).adapt_response is not \
            OpenAICompatibleProvider.adapt_response
        self._answer_markers = tuple(b'"' + reason.encode() + b'"' for reason in
                                     (*self.finish_reasons, *self.failed_finish_reasons))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def url(self, path: str, model: str) -> str:
        """The URL of an endpoint (``chat_path``, ``embeddings_path``...) for ``model``."""
        return self.base_url + path

    def chat_url(self, model: str) -> str:
        return self.url(self.chat_path, model)

    @property
    def completions_upstream(self) -> bool:
        """Whether legacy completions go to the upstream's own endpoint."""
        return self.native_completions or (bool(self.default_base_url)
                                           and self.base_url != self.default_base_url)

    def models_url(self) -> str:
        return self.base_url + self.models_path

    def emulates_json_schema(self, request: ChatRequest) -> bool:
        """Whether this request's ``response_format: json_schema`` is emulated through one
        forced tool (:mod:`ferro.json_tool`), for an upstream with tools but no structured
        outputs. Default: never."""
        return False

    def prepare_body(self, request: ChatRequest) -> dict[str, Any]:
        """The upstream chat request body; subclasses adapt it to their dialect."""
        body = self.passthrough_body(request)
        if self.emulates_json_schema(request):
            body = json_tool.request_body(body, self.name)
        return body

    def passthrough_body(self, request: OperationRequest) -> dict[str, Any]:
        """The client's body with the model mapped and, for streams, usage always requested
        (the gateway needs it even when the client did not ask)."""
        body = request.body
        model = self.upstream_model(body["model"])
        if model != body["model"]:
            body = {**body, "model": model}
        if not body.get("stream"):
            return body
        if not self.stream_usage_option:
            if "stream_options" in body:
                body = {k: v for k, v in body.items() if k != "stream_options"}
        elif not request.include_usage:
            body = {**body, "stream_options": {**(body.get("stream_options") or {}),
                                               "include_usage": True}}
        return body

    def adapt_response(self, body: dict[str, Any]) -> None:
        """Bring a non-streaming answer to OpenAI's shape, in place. Raise an UpstreamError
        for an answer that is really a failure. The default applies the finish-reason
        tables."""
        self.adapt_finish_reasons(body.get("choices"))

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """Bring a stream chunk that holds a ``chunk_markers`` byte string to OpenAI's shape
        (None drops it). Raise an UpstreamError for a failure. Default: as adapt_response."""
        self.adapt_finish_reasons(data.get("choices"))
        return data

    def adapt_finish_reasons(self, choices: Any) -> None:
        for choice in choices or ():
            reason = choice.get("finish_reason")
            if reason in self.finish_reasons:
                choice["finish_reason"] = self.finish_reasons[reason]
            elif reason in self.failed_finish_reasons:
                status, what = self.failed_finish_reasons[reason]
                raise UpstreamError(
                    f"{self.name}: the answer was cut short: {what} (finish_reason {reason!r})",
                    status=status, provider=self.name, retryable=True,
                    code="upstream_overloaded" if status == 503 else "upstream_error")

    async def chat(self, request: ChatRequest) -> ChatResponse:
        body = self.prepare_body(request)
        raw = await self.request_bytes("POST", self.chat_url(body["model"]), body=body,
                                       headers=self.headers)
        answer = self._adapted(raw, ChatResponse)
        if self.emulates_json_schema(request):
            return ChatResponse(json_tool.unwrap_answer(answer.body))
        return answer

    def _adapted(self, raw: bytes, kind: type[A]) -> A:
        """A chat or legacy-completion answer, through :meth:`adapt_response` when it may
        need it (parsed only then)."""
        answer = self.answer_of(raw, kind, "choices")
        if self._adapts_answers or any(m in raw for m in self._answer_markers):
            self.adapt_response(answer.body)
        return answer

    def answer_of(self, raw: bytes, kind: type[A], key: str) -> A:
        """The upstream's JSON answer, relayed unparsed when it looks whole (an object with
        ``key``), else parsed and checked. A relayed answer gets ``provider`` as its last
        key: where the upstream named a provider of its own, JSON readers take the last."""
        if raw[:1] == b"{" and b'"' + key.encode() + b'"' in raw:
            return kind.relayed(raw, self._provider_field)  # type: ignore[return-value]
        data = self.decode_json(raw)
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise UpstreamError(
                f"{self.name} answered without {key}: {str(data)[:200]}",
                status=502, provider=self.name, code="invalid_upstream_response", retryable=True,
            )
        data["provider"] = self.name
        return kind(data)

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk | RawFrames]:
        body = self.prepare_body(request)
        stream = self.relay(self.chat_url(body["model"]), body)
        return json_tool.unwrap_stream(stream) if self.emulates_json_schema(request) else stream

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        body = self.passthrough_body(request)
        url = self.url(self.embeddings_path, body["model"])
        inputs = request.inputs

        async def call(batch: list[Any]) -> EmbeddingsResponse:
            raw = await self.request_bytes("POST", url, headers=self.headers,
                                           body={**body, "input": batch} if batch is not inputs
                                           else body)
            return self.answer_of(raw, EmbeddingsResponse, "data")

        if len(inputs) <= self.max_embedding_batch:
            answer = await call(inputs)
        else:
            parts = await in_batches(inputs, self.max_embedding_batch, call)
            answer = EmbeddingsResponse(merge_embeddings([p.body for p in parts]))
        raw = answer.to_json()
        if request.encoding_format == "base64" and _floats_in(raw):
            encode_as_asked(request, answer.body)  # the upstream ignored encoding_format
        if raw.rfind(b'"usage"') < 0:  # OpenAI's clients require it; some upstreams omit it
            answer.body["usage"] = {"prompt_tokens": 0, "total_tokens": 0}
        return answer

    async def completions(self, request: CompletionsRequest) -> CompletionsResponse:
        if not self.completions_upstream:
            return await super().completions(request)
        body = self.passthrough_body(request)
        raw = await self.request_bytes("POST", self.url(self.completions_path, body["model"]),
                                       body=body, headers=self.headers)
        return self._adapted(raw, CompletionsResponse)

    def stream_completions(self, request: CompletionsRequest
                           ) -> AsyncIterator[ChatChunk | RawFrames]:
        if not self.completions_upstream:
            return super().stream_completions(request)
        body = self.passthrough_body(request)
        return self.relay(self.url(self.completions_path, body["model"]), body)

    async def relay(self, url: str, body: dict[str, Any]
                    ) -> AsyncIterator[ChatChunk | RawFrames]:
        """Relay the upstream's SSE. What arrives in one read is one item: the raw frames
        when they need no attention (the common case: no parsing at all), else the parsed
        chunks (usage, an error, ``[DONE]``, or a chunk this provider adapts)."""
        async with self.open_stream(url, body=body, headers=self.stream_headers) as resp:
            # The reads are taken here, not through sse.iter_frames: relayed through that
            # generator, each stream took one read and one write more and about 40% more
            # CPU (make bench, stream c=32: 449-486 vs 668-685 us per request).
            reader = self.frame_reader()
            async for piece in resp.content.iter_any():
                frames = reader.feed(piece)
                if not frames:
                    continue
                plain, frames = self._split_plain(frames)
                if plain:
                    yield RawFrames(plain, more=bool(frames))
                if not frames:
                    continue
                chunks, done = self._chunks(frames)
                for chunk in chunks:
                    yield chunk
                if done:
                    return
            tail = reader.rest()
            if tail:
                chunks, done = self._chunks(tail)
                for chunk in chunks:
                    yield chunk
                if done:
                    return
        raise self.truncated("[DONE]")

    def _split_plain(self, frames: bytes) -> tuple[bytes, bytes]:
        """Complete frames, split before the first one that needs attention (the end, an
        error, usage, something this provider adapts): what comes before it can be relayed
        as it is.

        The end (``[DONE]``), an error (``"error"``, ``event:``) and usage close a stream:
        only the frames at the end of a read can hold them, so those are looked for frame
        by frame from the end (a few hundred bytes) rather than in the whole read. A
        provider's own markers may be anywhere."""
        first = len(frames)
        for pattern in self._markers:
            at = frames.find(pattern, 0, first)
            if at >= 0:
                first = at
        end = len(frames)
        while end > 0:  # each frame ends with a blank line
            cut = frames.rfind(b"\n\n", 0, end - 2)
            start = cut + 2 if cut >= 0 else 0
            frame = frames[start:end]
            if not (b'"usage":{' in frame or b"[DONE]" in frame or b'"error"' in frame
                    or b"event:" in frame or b'"usage": {' in frame):
                break
            end = start
        first = min(first, end)
        if first == len(frames):
            return frames, b""
        cut = frames.rfind(b"\n\n", 0, first)
        start = cut + 2 if cut >= 0 else 0
        return frames[:start], frames[start:]

    def _chunks(self, frames: bytes) -> tuple[list[ChatChunk], bool]:
        """The chunks in complete frames, and whether ``[DONE]`` ended them."""
        chunks: list[ChatChunk] = []
        done = False
        for event, data in split_events(frames)[0]:
            if data is None:
                continue
            if data == b"[DONE]":
                done = True
                break
            if event == "error" or data.startswith(b'{"error"'):
                raise self.stream_error(data)
            if any(m in data for m in self._markers):
                adapted = self.adapt_chunk(self.decode_json(data))
                if adapted is not None:
                    chunks.append(ChatChunk(adapted, more=True))
                continue
            chunks.append(ChatChunk(raw=data, more=True))
        if chunks and not done:  # at the end, the last chunk goes out with [DONE]
            chunks[-1].more = False
        return chunks, done

    def stream_error(self, data: bytes) -> UpstreamError:
        payload = self.decode_json(data)
        message = self.error_message(payload) or data[:300].decode("utf-8", "replace")
        return UpstreamError(f"{self.name}: {message}", status=502, provider=self.name,
                             code="stream_error", retryable=True)

    async def discover_models(self) -> list[ModelInfo] | None:
        data = await self.request_json("GET", self.models_url(), headers=self.headers)
        items = data.get("data") if isinstance(data, dict) else data
        return [ModelInfo(str(m["id"]), self.name) for m in items or [] if isinstance(m, dict)
                and "id" in m]
