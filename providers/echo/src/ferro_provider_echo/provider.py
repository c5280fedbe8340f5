"""An offline provider that repeats the last user message, for demos and tests."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from ferro import (
    BaseProvider,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelInfo,
    Usage,
    embeddings,
)

#: The length of an echo embedding unless the request asks for ``dimensions``.
EMBEDDING_DIMENSIONS = 16

_WORD = re.compile(r"\S+\s*")


def message_text(message: dict[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def count_tokens(text: str) -> int:
    """Whitespace-separated words: the echo model's tokens."""
    return len(text.split())


def reply_for(request: ChatRequest) -> tuple[str, Usage]:
    last_user = next((m for m in reversed(request.messages) if m.get("role") == "user"), None)
    text = "echo: " + (message_text(last_user) if last_user else "")
    prompt = sum(count_tokens(message_text(m)) for m in request.messages)
    completion = count_tokens(text)
    return text, Usage(prompt, completion, prompt + completion)


def embedding_for(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``: the same text, the same vector."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend(b / 127.5 - 1.0 for b in digest)
        counter += 1
    vector = raw[:dimensions]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


class EchoProvider(BaseProvider):
    """Serves any model name. Streams its answer a word at a time; embeds text as a
    deterministic vector derived from its hash (equal texts, equal vectors)."""

    default_models = ("echo-1",)
    operations = BaseProvider.operations | {"embeddings"}

    def _id(self, request: ChatRequest) -> str:
        digest = hashlib.sha256(repr(request.messages).encode()).hexdigest()[:24]
        return f"chatcmpl-echo-{digest}"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        text, usage = reply_for(request)
        return ChatResponse({
            "id": self._id(request),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "provider": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage.to_openai(),
        })

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        text, usage = reply_for(request)
        rid, model, created = self._id(request), request.model, int(time.time())
        yield self.response_chunk(rid, model, created, {"role": "assistant", "content": ""})
        for word in _WORD.findall(text):
            yield self.response_chunk(rid, model, created, {"content": word})
        yield self.response_chunk(rid, model, created, {}, "stop")
        yield self.usage_chunk(rid, model, created, usage.to_openai())

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        texts = embeddings.text_inputs(request, self.name)
        size = request.dimensions or EMBEDDING_DIMENSIONS
        return embeddings.embeddings_response(
            request, [embedding_for(t, size) for t in texts], provider=self.name,
            prompt_tokens=sum(count_tokens(t) for t in texts))

    async def discover_models(self) -> list[ModelInfo] | None:
        return None
