"""Streams and whole answers, each made from the other: :class:`StreamAssembler` builds the
whole answer of a stream (for ``after_request`` plugins and the cache, which want it; used
only when they run), and :func:`replay` streams a whole answer (a cache hit)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ferro.attempt import ChunkStream
from ferro.operations import Answer, ChatChunk, ChatResponse, CompletionsResponse, Usage

__all__ = ["StreamAssembler", "replay"]

_TEXT = "text_completion"


class StreamAssembler:
    """Chat chunks back into one ``chat.completion``; legacy-completion chunks (choices
    with ``text``) into one ``text_completion``."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.text = False

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {k: chunk.get(k) for k in ("id", "created", "model")}
            self.text = chunk.get("object") == _TEXT
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            if self.text:
                self._add_text(index, choice)
                continue
            slot = self.choices.setdefault(index, {
                "index": index, "message": {"role": "assistant", "content": None},
                "finish_reason": None})
            message = slot["message"]
            delta = choice.get("delta") or {}
            if delta.get("role"):
                message["role"] = delta["role"]
            if delta.get("content"):
                message["content"] = (message["content"] or "") + delta["content"]
            for key in ("refusal", "reasoning_content"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            for call in delta.get("tool_calls") or ():
                self._add_tool_call(message, call)
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def _add_text(self, index: int, choice: dict[str, Any]) -> None:
        slot = self.choices.setdefault(index, {"text": "", "index": index, "logprobs": None,
                                               "finish_reason": None})
        slot["text"] += choice.get("text") or ""
        if choice.get("finish_reason"):
            slot["finish_reason"] = choice["finish_reason"]

    @staticmethod
    def _add_tool_call(message: dict[str, Any], call: dict[str, Any]) -> None:
        calls = message.setdefault("tool_calls", [])
        index = call.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        slot = calls[index]
        for key, value in call.items():  # provider extras (e.g. Gemini's thought signatures)
            if key not in ("index", "id", "type", "function"):
                slot[key] = value
        if call.get("id"):
            slot["id"] = call["id"]
        fn = call.get("function") or {}
        if fn.get("name"):
            slot["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            slot["function"]["arguments"] += fn["arguments"]

    def response(self, provider: str, usage: Usage | None) -> Answer:
        body: dict[str, Any] = {
            **self.head,
            "object": _TEXT if self.text else "chat.completion",
            "choices": [self.choices[i] for i in sorted(self.choices)],
            "provider": provider,
        }
        if usage is not None:
            body["usage"] = usage.to_openai()
        return CompletionsResponse(body) if self.text else ChatResponse(body)


def replay(answer: Answer) -> ChunkStream:
    """A whole chat or legacy-completion answer as a stream whose first chunk is ready."""
    body = answer.body
    text = body.get("object") == _TEXT
    base = {"id": body.get("id", ""), "object": _TEXT if text else "chat.completion.chunk",
            "created": body.get("created", 0), "model": body.get("model", "")}
    chunks = []
    for choice in body.get("choices", []):
        index = choice.get("index", 0)
        finish = choice.get("finish_reason", "stop")
        if text:
            chunks.append(ChatChunk({**base, "choices": [
                {"text": choice.get("text", ""), "index": index, "logprobs": None,
                 "finish_reason": finish}]}))
            continue
        message = dict(choice.get("message") or {})
        delta = {k: v for k, v in message.items() if v is not None}
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(tool_calls)]
        chunks.append(ChatChunk({**base, "choices": [
            {"index": index, "delta": delta, "finish_reason": None}]}))
        chunks.append(ChatChunk({**base, "choices": [
            {"index": index, "delta": {}, "finish_reason": finish}]}))
    if body.get("usage"):  # the relay passes it on only when the client asked for it
        chunks.append(ChatChunk({**base, "choices": [], "usage": body["usage"]}))
    if not chunks:
        chunks.append(ChatChunk({**base, "choices": []}))
    for chunk in chunks[:-1]:  # all at hand: the relay sends them in one write
        chunk.more = True

    async def rest() -> AsyncGenerator[ChatChunk, None]:
        for chunk in chunks[1:]:
            yield chunk

    return ChunkStream(None, chunks[0], rest())
