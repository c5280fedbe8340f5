"""The ``max-tokens`` plugin: refuses, before it is routed, a request that asks for too many
output tokens, carries too many messages, or too much input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferro import ChatRequest, RejectedError, RequestContext

from ferro_guardrail_max_tokens.inputs import chat_overhead, inputs
from ferro_guardrail_max_tokens.options import Options
from ferro_guardrail_max_tokens.tokens import (
    Encoding,
    count_tokens,
    encoding_name,
    estimate_tokens,
    installed_encodings,
    utf8_length,
)

__all__ = ["MaxTokens"]

#: The request fields that ask for a number of output tokens (the newer name last).
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens")


class MaxTokens:
    """Each limit is a 400 with its own code: ``max_tokens_exceeded``, ``too_many_messages``,
    ``input_too_long``, ``input_tokens_exceeded``. A limit of 0 is off.

    ``encodings`` replaces the installed tokenizers (by encoding name); they are loaded
    only when ``max_input_tokens`` is set."""

    Options = Options

    def __init__(self, options: Options, *,
                 encodings: Mapping[str, Encoding] | None = None) -> None:
        self.max_tokens = options.max_tokens
        self.max_messages = options.max_messages
        self.max_input_length = options.max_input_length
        self.max_input_tokens = options.max_input_tokens
        self.encodings: Mapping[str, Encoding] = {}
        if self.max_input_tokens:
            self.encodings = installed_encodings() if encodings is None else encodings

    async def before_request(self, ctx: RequestContext) -> None:
        request = ctx.request
        if self.max_tokens:
            self._check_output(request.body)
        messages = request.messages if isinstance(request, ChatRequest) else None
        if self.max_messages and messages is not None and len(messages) > self.max_messages:
            raise RejectedError(f"message count {len(messages)} exceeds limit of "
                                f"{self.max_messages}", code="too_many_messages",
                                param="messages")
        if not (self.max_input_length or self.max_input_tokens):
            return
        texts: list[str] = []
        given = 0  # tokens sent as token arrays
        for item in inputs(request):
            if isinstance(item, str):
                texts.append(item)
            else:
                given += len(item)
        if self.max_input_length:
            length = sum(map(len, texts))
            if length > self.max_input_length:
                raise RejectedError(f"total input length {length} exceeds limit of "
                                    f"{self.max_input_length}", code="input_too_long")
        if self.max_input_tokens:
            overhead = chat_overhead(messages) if messages is not None else 0
            await self._check_tokens(ctx.model, texts, given + overhead)

    def _check_output(self, body: dict[str, Any]) -> None:
        for field in _OUTPUT_FIELDS:
            value = body.get(field)
            if _is_number(value) and value > self.max_tokens:
                raise RejectedError(f"{field} {_show(value)} exceeds limit of "
                                    f"{self.max_tokens}", code="max_tokens_exceeded",
                                    param=field)

    async def _check_tokens(self, model: str, texts: list[str], fixed: int) -> None:
        """``fixed``: the tokens known without counting (token arrays, the chat format)."""
        limit = self.max_input_tokens
        size = sum(map(utf8_length, texts))
        if fixed + size <= limit:  # a token is at least one byte: no need to count
            return
        name = encoding_name(model)
        encoding = self.encodings.get(name) if name is not None else None
        if encoding is None:
            estimate = fixed + estimate_tokens(size)
            if estimate > limit:
                raise _too_many(f"estimated input tokens {estimate} exceeds limit of {limit}")
            return
        counted = fixed + await count_tokens(encoding, texts, limit - fixed)
        if counted > limit:
            raise _too_many(f"input of at least {counted} tokens ({name}) exceeds limit of "
                            f"{limit}")


def _too_many(message: str) -> RejectedError:
    return RejectedError(message, code="input_tokens_exceeded")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: float) -> str:
    """A number as the client wrote it, a whole float without its ``.0``."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
