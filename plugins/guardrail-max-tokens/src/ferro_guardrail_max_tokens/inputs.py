"""What a request sends a model, as the limits measure it: its texts, the token arrays it
sends instead of text, and the tokens OpenAI's chat format adds around the messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ferro import ChatRequest, CompletionsRequest, EmbeddingsRequest, OperationRequest, wire

__all__ = ["PER_MESSAGE", "PER_NAME", "REPLY_PRIMING", "chat_overhead", "inputs"]

#: The chat format's tokens, as OpenAI's cookbook counts them: 3 around each message plus
#: its role (one token for every role), 1 more for a message with a name, and 3 that prime
#: the reply.
PER_MESSAGE = 4
PER_NAME = 1
REPLY_PRIMING = 3


def inputs(request: OperationRequest) -> Iterator[str | list[int]]:
    """Each message's name, content (a string, or its text parts) and tool-call arguments
    (chat); the prompts (legacy completions); the inputs (embeddings). Prompts and inputs
    may be token arrays."""
    if isinstance(request, ChatRequest):
        for message in request.messages:
            yield from _message_texts(message)
    elif isinstance(request, CompletionsRequest):
        yield from request.prompts
    elif isinstance(request, EmbeddingsRequest):
        yield from request.inputs


def chat_overhead(messages: list[dict[str, Any]]) -> int:
    return REPLY_PRIMING + sum(PER_MESSAGE + (PER_NAME if m.get("name") else 0)
                               for m in messages)


def _message_texts(message: dict[str, Any]) -> Iterator[str]:
    name = message.get("name")
    if isinstance(name, str) and name:
        yield name
    yield from wire.message_texts(message)
