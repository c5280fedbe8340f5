"""Assembling a streamed answer back into one ``chat.completion`` (for ``after_request``
plugins such as a cache, which want the whole answer). Used only when such plugins run."""

from __future__ import annotations

from typing import Any

from ferro.types import ChatResponse, Usage

__all__ = ["StreamAssembler"]


class StreamAssembler:
    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {k: chunk.get(k) for k in ("id", "created", "model")}
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
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

    def response(self, provider: str, usage: Usage | None) -> ChatResponse:
        body: dict[str, Any] = {
            **self.head,
            "object": "chat.completion",
            "choices": [self.choices[i] for i in sorted(self.choices)],
            "provider": provider,
        }
        if usage is not None:
            body["usage"] = usage.to_openai()
        return ChatResponse(body)
