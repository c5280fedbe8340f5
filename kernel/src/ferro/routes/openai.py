"""OpenAI's wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/completions``.

Answers are OpenAI JSON; streams are ``data: <chunk>`` SSE frames ending ``data: [DONE]``;
a stream that fails after its first byte ends with ``data: {"error": ...}`` and ``[DONE]``.
Errors are ``{"error": {"message", "type", "code", "param"}}`` with ``x-should-retry``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
from aiohttp import web

from ferro.errors import GatewayError
from ferro.operations import CHAT, COMPLETIONS, EMBEDDINGS, Answer, ChatChunk, Operation, OperationRequest
from ferro.sse import DONE, encode_event
from ferro.types import RequestContext
from ferro.validation import (
    parse_chat_request,
    parse_completions_request,
    parse_embeddings_request,
)

__all__ = ["CODECS", "OpenAICodec", "json_error"]

_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}


def json_error(exc: GatewayError) -> web.Response:
    """The error as JSON. ``x-should-retry`` says whether trying again may help: the header
    OpenAI's own API sends, and its SDKs obey."""
    headers = {**exc.headers, "x-should-retry": "true" if exc.retryable else "false"}
    return web.Response(status=exc.status, body=exc.to_json(), content_type=_JSON,
                        headers=headers)


class OpenAIStream:
    """OpenAI's SSE: stateless, so one instance serves every stream."""

    relays_raw = True
    headers: Mapping[str, str] = _SSE_HEADERS

    def chunk(self, chunk: ChatChunk) -> bytes:
        return b"data: " + chunk.to_json() + b"\n\n"

    def done(self) -> bytes:
        return DONE

    def error(self, exc: GatewayError) -> bytes:
        return encode_event(exc.to_json()) + DONE


_STREAM = OpenAIStream()


@attrs.frozen
class OpenAICodec:
    operation: Operation
    parser: Callable[[bytes], OperationRequest]

    def parse(self, raw: bytes) -> OperationRequest:
        return self.parser(raw)

    def answer(self, answer: Answer, headers: Mapping[str, str]) -> web.Response:
        return web.Response(body=answer.to_json(), content_type=_JSON, headers=headers or None)

    def error(self, exc: GatewayError) -> web.Response:
        return json_error(exc)

    def stream(self, ctx: RequestContext) -> OpenAIStream:
        return _STREAM


#: route path -> its codec
CODECS = {
    "/v1/chat/completions": OpenAICodec(CHAT, parse_chat_request),
    "/v1/embeddings": OpenAICodec(EMBEDDINGS, parse_embeddings_request),
    "/v1/completions": OpenAICodec(COMPLETIONS, parse_completions_request),
}
