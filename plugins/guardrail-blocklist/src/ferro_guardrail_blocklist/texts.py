"""The texts the blocklist reads, from a request, a whole answer or a stream chunk.

A message's text is its content (a string, or its text parts) and the arguments of its tool
calls; each is searched on its own, so a phrase never spans two of them. Images, audio and
token arrays carry no text to search.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ferro import ChatRequest, CompletionsRequest, EmbeddingsRequest, OperationRequest, wire

__all__ = ["answer_texts", "chunk_texts", "request_texts"]

#: A stream text's key: its choice index, and the tool call's index (-1 for the content).
Key = tuple[int, int]


def request_texts(request: OperationRequest) -> Iterator[str]:
    """Every message's texts (chat), the prompts (legacy completions), the inputs
    (embeddings)."""
    if isinstance(request, ChatRequest):
        for message in request.messages:
            yield from wire.message_texts(message)
    elif isinstance(request, CompletionsRequest):
        yield from _strings(request.prompts)
    elif isinstance(request, EmbeddingsRequest):
        yield from _strings(request.inputs)


def answer_texts(body: dict[str, Any]) -> Iterator[str]:
    """The texts of a whole answer's choices: chat messages, or legacy ``text``."""
    for choice in body.get("choices") or ():
        message = choice.get("message")
        if isinstance(message, dict):
            yield from wire.message_texts(message)
        text = choice.get("text")
        if isinstance(text, str) and text:
            yield text


def chunk_texts(choices: Iterable[dict[str, Any]]) -> Iterator[tuple[Key, str]]:
    """The new text of a stream chunk's choices, each under the key of the text it
    continues: a choice's content (or legacy ``text``), or one of its tool calls' arguments."""
    for choice in choices:
        index = choice.get("index", 0)
        delta = choice.get("delta") or {}
        content = delta.get("content") or choice.get("text")
        if isinstance(content, str) and content:
            yield (index, -1), content
        for position, call in enumerate(delta.get("tool_calls") or ()):
            arguments = (call.get("function") or {}).get("arguments")
            if isinstance(arguments, str) and arguments:
                yield (index, call.get("index", position)), arguments


def _strings(values: list[Any]) -> Iterator[str]:
    return (value for value in values if isinstance(value, str) and value)
