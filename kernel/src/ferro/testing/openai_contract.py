"""``OpenAICompatibleContract``: :class:`~ferro.testing.ProviderContract` with OpenAI's wire
format already written, for the providers that speak OpenAI's chat dialect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ferro.testing.contracts import ProviderContract
from ferro.testing.helpers import sse_body

__all__ = ["OpenAICompatibleContract"]

Fields = Mapping[str, Any]

#: OpenAI's error ``type`` and ``code`` for the statuses where it names more than the status
_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
}


class OpenAICompatibleContract(ProviderContract):
    """The provider contract, with the native formats written as OpenAI sends them:

    - a ``chat.completion`` reply with ``usage``;
    - an SSE stream of ``chat.completion.chunk``: a role chunk, one chunk per content
      delta, a finish chunk, a usage-only chunk (``choices: []``) and ``data: [DONE]``;
    - a truncated stream: the same up to the first content delta, with no finish and no
      ``[DONE]``;
    - OpenAI's error body, ``{"error": {"message", "type", "param", "code"}}``.

    Set ``provider_type``, ``upstream_path`` and ``model`` as for ``ProviderContract``, and
    only those knobs below where the provider's wire differs from OpenAI's. The provider is
    configured with ``api_key: test-key`` and a base URL that is ``upstream_path`` without
    ``/chat/completions``; override :meth:`settings` (and :meth:`check_auth`) otherwise.

    Hooks for what a fixed value cannot say: :meth:`usage` (a provider's own counters) and
    :meth:`finish_chunk_fields`. :meth:`chunk` builds one chunk the way the stream does, for a
    package's own tests.
    """

    #: the ``id`` of the reply and of every chunk
    response_id: ClassVar[str] = "chatcmpl-1"
    #: the ``model`` replies and chunks report, when the upstream names a version of the
    #: requested model (Azure: ``gpt-4o-2024-08-06``); None reports ``model``
    served_model: ClassVar[str | None] = None
    #: the finish reason the provider sends for a completed answer (Together: ``eos``)
    finish_reason: ClassVar[str] = "stop"

    #: top-level fields of the reply (Groq's ``x_groq``, Azure's ``prompt_filter_results``)
    reply_fields: ClassVar[Fields] = {}
    #: fields of the reply's message (Mistral: ``tool_calls: null``)
    message_fields: ClassVar[Fields] = {}
    #: fields of every choice, in the reply and in chunks (``logprobs: null``, Azure's
    #: ``content_filter_results``)
    choice_fields: ClassVar[Fields] = {}
    #: top-level fields of every chunk (``system_fingerprint``, Together's ``usage: null``)
    chunk_fields: ClassVar[Fields] = {}

    #: whole events sent before the first chunk (Azure's prompt-filter chunk, no choices)
    stream_preamble: ClassVar[Sequence[Fields]] = ()
    #: the deltas before the content, one chunk each; () when the role rides the content
    #: deltas (see :attr:`delta_fields`)
    opening_deltas: ClassVar[Sequence[Fields]] = ({"role": "assistant", "content": ""},)
    #: top-level fields of the stream's first chunk (Groq's ``x_groq`` request id)
    first_chunk_fields: ClassVar[Fields] = {}
    #: fields of every delta under those it sets itself (Ollama and Together repeat
    #: ``role``; DeepSeek sends ``reasoning_content: null`` beside the content)
    delta_fields: ClassVar[Fields] = {}
    #: the delta of the finish chunk (some send ``{"content": ""}``)
    finish_delta: ClassVar[Fields] = {}
    #: the last content chunk carries the finish reason: no finish-only chunk (Together)
    finish_on_last_content: ClassVar[bool] = False
    #: the usage rides the chunk with the finish reason: no usage-only chunk after it
    #: (Mistral, Together)
    usage_on_finish_chunk: ClassVar[bool] = False

    #: the ``type`` of every error body, with ``code: null`` (Ollama: ``api_error``); None
    #: gives OpenAI's own type and code for the status
    error_type: ClassVar[str | None] = None

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"api_key": "test-key",
                "base_url": base_url + self.upstream_path.removesuffix("/chat/completions")}

    # wire pieces

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        """The ``usage`` of replies and streams. Override to add the provider's counters."""
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def chunk(self, delta: Fields, finish_reason: str | None = None,
              usage: Fields | None = None, **fields: Any) -> dict[str, Any]:
        """One ``chat.completion.chunk`` with one choice: ``delta`` over
        :attr:`delta_fields`, the finish reason, ``usage`` when given, and top-level
        ``fields``."""
        out = {"id": self.response_id, "object": "chat.completion.chunk", "created": 1,
               "model": self.served_model or self.model, **self.chunk_fields,
               "choices": [{"index": 0, "delta": {**self.delta_fields, **delta},
                            **self.choice_fields, "finish_reason": finish_reason}],
               **fields}
        if usage is not None:
            out["usage"] = usage
        return out

    def usage_chunk(self, usage: Fields) -> dict[str, Any]:
        """The usage-only chunk, ``choices: []``, that ends an OpenAI stream."""
        return {**self.chunk({}), "choices": [], "usage": usage}

    def finish_chunk_fields(self, usage: dict[str, Any]) -> dict[str, Any]:
        """Top-level fields of the chunk with the finish reason: the usage when
        :attr:`usage_on_finish_chunk`. Override for fields that depend on the usage (Groq
        repeats it in ``x_groq.usage``)."""
        return {"usage": usage} if self.usage_on_finish_chunk else {}

    # the native formats

    def native_reply(self, text: str, prompt_tokens: int, completion_tokens: int,
                     finish_reason: str | None = None) -> dict[str, Any]:
        """A ``chat.completion``; ``finish_reason`` replaces :attr:`finish_reason`."""
        message = {"role": "assistant", "content": text, **self.message_fields}
        return {"id": self.response_id, "object": "chat.completion", "created": 1,
                "model": self.served_model or self.model, **self.reply_fields,
                "choices": [{"index": 0, "message": message, **self.choice_fields,
                             "finish_reason": finish_reason or self.finish_reason}],
                "usage": self.usage(prompt_tokens, completion_tokens)}

    def native_stream(self, parts: tuple[str, ...], prompt_tokens: int,
                      completion_tokens: int) -> bytes:
        usage = self.usage(prompt_tokens, completion_tokens)
        end = self.finish_chunk_fields(usage)
        if self.finish_on_last_content:
            chunks = self._chunks(parts[:-1])
            chunks.append(self.chunk({"content": parts[-1]}, self.finish_reason, **end))
        else:
            chunks = self._chunks(parts)
            chunks.append(self.chunk(self.finish_delta, self.finish_reason, **end))
        if not self.usage_on_finish_chunk:
            chunks.append(self.usage_chunk(usage))
        return sse_body(*self._events(chunks), b"[DONE]")

    def native_truncated_stream(self, parts: tuple[str, ...]) -> bytes:
        return sse_body(*self._events(self._chunks(parts[:1])))

    def native_error(self, status: int, message: str) -> dict[str, Any]:
        if self.error_type is not None:
            kind, code = self.error_type, None
        else:
            kind, code = _OPENAI_ERRORS.get(
                status, ("server_error" if status >= 500 else "invalid_request_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _chunks(self, parts: Sequence[str]) -> list[dict[str, Any]]:
        return ([self.chunk(delta) for delta in self.opening_deltas]
                + [self.chunk({"content": part}) for part in parts])

    def _events(self, chunks: list[dict[str, Any]]) -> list[Fields]:
        if chunks and self.first_chunk_fields:
            chunks[0] = {**chunks[0], **self.first_chunk_fields}
        return [*self.stream_preamble, *chunks]
