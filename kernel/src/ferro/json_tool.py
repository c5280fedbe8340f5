"""``response_format: json_schema`` emulated with one forced tool, for upstreams that speak
OpenAI's chat format and have tools but not (for every model) structured outputs.

The request gets one function tool, ``json_response``, whose parameters are the schema, and
a ``tool_choice`` that forces it; ``response_format`` is left out. The answer's call of that
tool comes back as ``message.content`` (the call's arguments: a JSON string) with
``finish_reason: stop``; streamed, the argument fragments arrive as ``content`` deltas. No
tool call reaches the client.

A request with tools of its own as well is refused (400): with the one tool forced, the
model could never call the client's, and with a free choice it might not answer in the
schema at all. The schema's root must be an object, as tool arguments always are.

Everything here is a pure function of the OpenAI-shaped values, except :func:`unwrap_stream`,
which applies :func:`unwrap_chunk` to a provider's stream with a :class:`StreamState` of its
own (a provider instance serves concurrent requests, so the state belongs to the stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from ferro import wire
from ferro.errors import InvalidRequestError
from ferro.operations import ChatChunk, RawFrames

__all__ = [
    "TOOL_NAME",
    "StreamState",
    "request_body",
    "unwrap_answer",
    "unwrap_chunk",
    "unwrap_stream",
    "wanted",
]

#: The name of the tool that carries the answer.
TOOL_NAME = "json_response"

_TOOL_CALLS = b'"tool_calls"'


def wanted(body: Mapping[str, Any]) -> bool:
    """Whether the request asks for ``response_format: json_schema``."""
    response_format = body.get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_schema"


def request_body(body: dict[str, Any], provider: str) -> dict[str, Any]:
    """``body`` (a request that :func:`wanted` the emulation) with ``response_format``
    replaced by the forced ``json_response`` tool; never mutates ``body``. A 400 when the
    request has tools of its own or a schema whose root is not an object."""
    if body.get("tools") or body.get("functions"):
        raise wire.unsupported(
            provider, "response_format json_schema together with tools",
            "the gateway emulates json_schema here with a tool of its own; send the tools "
            "without response_format, or response_format without tools")
    out = {k: v for k, v in body.items()
           if k not in ("response_format", "tool_choice", "functions", "function_call")}
    out["tools"] = [{"type": "function", "function": _tool_function(body["response_format"],
                                                                    provider)}]
    out["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
    return out


def _tool_function(response_format: Mapping[str, Any], provider: str) -> dict[str, Any]:
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        raise InvalidRequestError("response_format json_schema needs a json_schema object "
                                  "with the schema", param="response_format")
    schema = spec.get("schema")
    if schema is None:
        schema = {"type": "object"}
    root = schema.get("type") if isinstance(schema, Mapping) else None
    if root != "object" and not (root is None and isinstance(schema, Mapping)
                                 and "properties" in schema):
        raise wire.unsupported(provider, "a json_schema whose root is not an object",
                               "tool arguments are always a JSON object; wrap the value in one")
    description = ("Give your final answer by calling this function: its arguments are the "
                   "answer, as JSON matching the schema.")
    if spec.get("name"):
        description += f" Schema name: {spec['name']}."
    if spec.get("description"):
        description += " " + str(spec["description"])
    return {"name": TOOL_NAME, "description": description, "parameters": schema}


# --- answers -------------------------------------------------------------------------------


def unwrap_answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` with the ``json_response`` call turned into ``message.content``,
    no ``tool_calls`` and ``finish_reason: stop`` (for ``tool_calls``); never mutates
    ``body``. An answer that did not call the tool keeps its text."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return dict(body)
    return {**body, "choices": [_unwrap_choice(c) for c in choices]}


def _unwrap_choice(choice: Any) -> Any:
    if not isinstance(choice, Mapping):
        return choice
    out = dict(choice)
    message = choice.get("message")
    if isinstance(message, Mapping):
        fixed = {k: v for k, v in message.items() if k != "tool_calls"}
        answer = _answer_arguments(message.get("tool_calls"))
        if answer is not None:
            fixed["content"] = answer
        out["message"] = fixed
    if out.get("finish_reason") == "tool_calls":
        out["finish_reason"] = "stop"
    return out


def _answer_arguments(calls: Any) -> str | None:
    """The arguments of the first ``json_response`` call, as a JSON string."""
    for call in calls or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and function.get("name") == TOOL_NAME:
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                return arguments
            return orjson.dumps(arguments if arguments is not None else {}).decode()
    return None


# --- streams -------------------------------------------------------------------------------


class StreamState:
    """What one stream needs remembered: which tool call (by its ``index``) carries the
    answer, per choice. Later deltas of a call name only its index."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}

    def arguments(self, choice: int, calls: Any) -> str:
        """The answer's argument fragments among a delta's ``tool_calls``; the fragments of
        any other call (a second, parallel one) are dropped."""
        parts: list[str] = []
        for call in calls or ():
            if not isinstance(call, Mapping):
                continue
            index = call.get("index", 0)
            function = call.get("function")
            function = function if isinstance(function, Mapping) else {}
            if choice not in self.calls:
                if function.get("name") != TOOL_NAME:
                    continue
                self.calls[choice] = index
            if index == self.calls[choice] and isinstance(function.get("arguments"), str):
                parts.append(function["arguments"])
        return "".join(parts)


def unwrap_chunk(chunk: Mapping[str, Any], state: StreamState) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with the answer's argument fragments as ``content``, no
    ``tool_calls`` and ``finish_reason: stop`` (for ``tool_calls``); never mutates
    ``chunk``."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return dict(chunk)
    return {**chunk, "choices": [_unwrap_delta(c, state) for c in choices]}


def _unwrap_delta(choice: Any, state: StreamState) -> Any:
    if not isinstance(choice, Mapping):
        return choice
    out = dict(choice)
    delta = choice.get("delta")
    if isinstance(delta, Mapping) and "tool_calls" in delta:
        fixed = {k: v for k, v in delta.items() if k != "tool_calls"}
        text = state.arguments(choice.get("index", 0), delta["tool_calls"])
        if text:
            fixed["content"] = (fixed.get("content") or "") + text
        out["delta"] = fixed
    if out.get("finish_reason") == "tool_calls":
        out["finish_reason"] = "stop"
    return out


async def unwrap_stream(items: AsyncIterator[ChatChunk | RawFrames]
                        ) -> AsyncIterator[ChatChunk | RawFrames]:
    """A provider's stream with :func:`unwrap_chunk` applied, with its own state. Pieces that
    hold no tool call pass as they came (raw frames stay unparsed). Closing this stream
    closes ``items`` (and so the upstream connection)."""
    state = StreamState()
    try:
        async for item in items:
            if isinstance(item, RawFrames):
                if _TOOL_CALLS not in item.frames:
                    yield item
                    continue
                chunks = item.chunks()
                for i, chunk in enumerate(chunks):
                    yield ChatChunk(unwrap_chunk(chunk.as_dict(), state),
                                    more=item.more or i < len(chunks) - 1)
            elif item.data is None and _TOOL_CALLS not in (item.raw or b""):
                yield item
            else:
                yield ChatChunk(unwrap_chunk(item.as_dict(), state), more=item.more)
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
