"""Cohere v2 stream events in, OpenAI ``chat.completion.chunk``s out (pure, no I/O).

Events (https://docs.cohere.com/docs/streaming): ``message-start``, ``content-start``,
``content-delta``, ``content-end``, ``tool-plan-delta``, ``tool-call-start``,
``tool-call-delta``, ``tool-call-end``, ``citation-start``, ``citation-end``,
``message-end`` (terminal: ``delta.finish_reason``, ``delta.usage``, ``delta.error``).
"""

from __future__ import annotations

import time
from typing import Any

from ferro import BaseProvider, ChatChunk, UpstreamError, wire

from ferro_provider_cohere._wire import (
    FAILED,
    finish_reason,
    generation_failed,
    logprob_entry,
    usage,
)

_chunk = BaseProvider.response_chunk


class StreamTranslator:
    """One per stream: :meth:`feed` each decoded event in order; ``done`` turns true at
    ``message-end``. Cohere's ``index`` on tool events becomes a 0-based OpenAI tool-call
    index in order of appearance; with ``max_tool_calls`` set, later calls are dropped."""

    def __init__(self, model: str, provider: str, *, max_tool_calls: int | None = None) -> None:
        self.model = model
        self.provider = provider
        self.created = int(time.time())
        self.id = wire.new_id()
        self.done = False
        self._max_calls = max_tool_calls
        self._calls: dict[Any, int | None] = {}  # Cohere index -> OpenAI index (None: dropped)
        self._last: int | None = None

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]:
        kind = event.get("type")
        if kind == "content-delta":
            return self._content(event)
        if kind == "tool-call-delta":
            return self._call_delta(event)
        if kind == "tool-plan-delta":
            plan = _message(event).get("tool_plan")
            return [self._delta({"content": plan})] if plan else []
        if kind == "tool-call-start":
            return self._call_start(event)
        if kind == "content-start":
            return self._content(event)
        if kind == "message-start":
            if event.get("id"):
                self.id = str(event["id"])
            return [self._delta({"role": "assistant", "content": ""})]
        if kind == "message-end":
            return self._end(event.get("delta") or {})
        if kind is None and isinstance(event.get("message"), str):  # an error body mid-stream
            raise UpstreamError(f"{self.provider}: {event['message']}", status=502,
                                provider=self.provider, code="stream_error", retryable=True)
        return []  # content-end, tool-call-end, citations, debug, events added later

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return _chunk(self.id, self.model, self.created, delta, finish)

    def _content(self, event: dict[str, Any]) -> list[ChatChunk]:
        content = _message(event).get("content") or {}
        delta: dict[str, Any] = {}
        if content.get("text"):
            delta["content"] = content["text"]
        if content.get("thinking"):
            delta["reasoning_content"] = content["thinking"]
        if not delta:
            return []
        chunk = self._delta(delta)
        if event.get("logprobs"):
            chunk.data["choices"][0]["logprobs"] = {  # type: ignore[index]
                "content": [logprob_entry(event["logprobs"])], "refusal": None}
        return [chunk]

    def _call_start(self, event: dict[str, Any]) -> list[ChatChunk]:
        call = _message(event).get("tool_calls") or {}
        if isinstance(call, list):  # documented as one object; tolerate a list of one
            call = call[0] if call else {}
        index = sum(1 for k in self._calls.values() if k is not None)
        if self._max_calls is not None and index >= self._max_calls:
            self._calls[event.get("index")] = self._last = None
            return []
        self._calls[event.get("index")] = self._last = index
        fn = call.get("function") or {}
        return [self._delta({"tool_calls": [{
            "index": index, "id": call.get("id") or f"call_{self.id}_{index}",
            "type": "function",
            "function": {"name": fn.get("name") or "", "arguments": fn.get("arguments") or ""},
        }]})]

    def _call_delta(self, event: dict[str, Any]) -> list[ChatChunk]:
        key = event.get("index")
        if key in self._calls:
            index = self._calls[key]
        elif self._calls:  # no (or an unknown) index: the call being streamed
            index = self._last
        else:
            raise UpstreamError(f"{self.provider} streamed tool-call-delta before "
                                "tool-call-start", status=502, provider=self.provider,
                                code="invalid_upstream_response", retryable=True)
        call = _message(event).get("tool_calls") or {}
        if isinstance(call, list):
            call = call[0] if call else {}
        fragment = (call.get("function") or {}).get("arguments")
        if index is None or not fragment:
            return []
        return [self._delta({"tool_calls": [{"index": index,
                                             "function": {"arguments": fragment}}]})]

    def _end(self, delta: dict[str, Any]) -> list[ChatChunk]:
        reason = delta.get("finish_reason")
        if reason in FAILED or delta.get("error"):
            raise generation_failed(self.provider, reason, delta.get("error"))
        self.done = True
        has_calls = any(k is not None for k in self._calls.values())
        chunks = [self._delta({}, finish_reason(reason, has_calls))]
        if delta.get("usage"):
            chunks.append(BaseProvider.usage_chunk(self.id, self.model, self.created,
                                                   usage(delta["usage"]).to_openai()))
        return chunks


def _message(event: dict[str, Any]) -> dict[str, Any]:
    return (event.get("delta") or {}).get("message") or {}
