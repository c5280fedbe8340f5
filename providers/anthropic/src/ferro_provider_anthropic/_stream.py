"""The Messages API event stream as OpenAI chunk deltas: a small state machine, no I/O.

Events (https://platform.claude.com/docs/en/build-with-claude/streaming): ``message_start``,
then per content block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta``, ``signature_delta``) / ``content_block_stop``,
then ``message_delta`` (``stop_reason``, cumulative ``usage``) and ``message_stop``; ``ping``
anywhere. ``error`` and ``message_stop`` are the caller's to act on.
"""

from __future__ import annotations

from typing import Any

from ferro_provider_anthropic._wire import (
    JSON_TOOL,
    dump_arguments,
    finish_reason,
    openai_usage,
    refusal_text,
)

#: Marks the content block that carries an emulated ``response_format`` answer.
_ANSWER = -1


class StreamState:
    """Feed each event's JSON payload to :meth:`feed`; it returns the delta of the OpenAI
    chunk to send, or None. OpenAI ``tool_calls[].index`` counts tool calls (0, 1, …), not
    Anthropic's content-block indexes, so tool blocks are numbered as they start."""

    __slots__ = ("id", "json_mode", "model", "stop_details", "stop_reason", "thinking",
                 "tool_blocks", "tool_count", "usage")

    def __init__(self, model: str, *, json_mode: bool = False) -> None:
        self.id: str | None = None
        self.model = model
        self.json_mode = json_mode
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.stop_details: Any = None
        self.tool_blocks: dict[int, int] = {}  # content-block index -> tool-call index
        self.tool_count = 0
        self.thinking: dict[int, dict[str, Any]] = {}

    def feed(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event.get("index"), event.get("delta") or {})
        if kind == "content_block_start":
            return self._start(event.get("index"), event.get("content_block") or {})
        if kind == "content_block_stop":
            block = self.thinking.pop(event.get("index"), None)  # type: ignore[arg-type]
            if block is None:
                return None
            if "thinking" in block:
                block["thinking"] = "".join(block["thinking"])
            return {"thinking_blocks": [block]}
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self._add_usage(message.get("usage"))
            return {"role": "assistant", "content": ""}
        if kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_details = (delta.get("stop_details") or event.get("stop_details")
                                 or self.stop_details)
            self._add_usage(event.get("usage"))
        return None  # ping, and event types newer than this code

    def _delta(self, index: Any, delta: dict[str, Any]) -> dict[str, Any] | None:
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return {"content": text} if text else None
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            slot = self.tool_blocks.get(index)
            if not fragment or slot is None:
                return None
            if slot == _ANSWER:
                return {"content": fragment}
            return {"tool_calls": [{"index": slot, "function": {"arguments": fragment}}]}
        if kind == "thinking_delta":
            text = delta.get("thinking")
            block = self.thinking.get(index)
            if block is not None and text:
                block["thinking"].append(text)
            return {"reasoning_content": text} if text else None
        if kind == "signature_delta":
            block = self.thinking.get(index)
            if block is not None:
                block["signature"] = delta.get("signature", "")
        return None

    def _start(self, index: Any, block: dict[str, Any]) -> dict[str, Any] | None:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return {"content": text} if text else None
        if kind == "tool_use":
            arguments = dump_arguments(block["input"]) if block.get("input") else ""
            if self.json_mode and block.get("name") == JSON_TOOL:
                self.tool_blocks[index] = _ANSWER
                return {"content": arguments} if arguments else None
            slot = self.tool_blocks[index] = self.tool_count
            self.tool_count += 1
            return {"tool_calls": [{"index": slot, "id": block.get("id"), "type": "function",
                                    "function": {"name": block.get("name"),
                                                 "arguments": arguments}}]}
        if kind == "thinking":
            text = block.get("thinking") or ""
            self.thinking[index] = {"type": "thinking", "thinking": [text],
                                    "signature": block.get("signature") or ""}
            return {"reasoning_content": text} if text else None
        if kind == "redacted_thinking":
            self.thinking[index] = dict(block)
        return None

    def _add_usage(self, usage: Any) -> None:
        if usage:
            self.usage.update((k, v) for k, v in usage.items() if v is not None)

    def finish(self) -> tuple[dict[str, Any], str]:
        """The last chunk's delta and finish_reason (after ``message_stop``)."""
        delta: dict[str, Any] = {}
        if self.stop_reason == "refusal":
            delta["refusal"] = refusal_text(self.stop_details)
        return delta, finish_reason(self.stop_reason, self.tool_count > 0)

    def openai_usage(self) -> dict[str, Any]:
        return openai_usage(self.usage)
