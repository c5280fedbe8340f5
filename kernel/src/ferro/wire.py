"""Helpers for translating providers: the pieces of the OpenAI format every translation
needs, so no provider package writes them again."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ferro.errors import InvalidRequestError

__all__ = [
    "chat_completion",
    "content_parts",
    "data_url",
    "max_tokens",
    "message_texts",
    "new_id",
    "parse_arguments",
    "stop_sequences",
    "text_of",
    "unsupported",
]


def new_id(prefix: str = "chatcmpl-") -> str:
    return prefix + uuid.uuid4().hex[:24]


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content
                     if isinstance(p, dict) and p.get("type") == "text")


def message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    """A chat message's texts as a model reads them, each on its own and none empty: its
    content (a string, or its text parts) and its tool calls' arguments."""
    content = message.get("content")
    if isinstance(content, str | list):
        text = text_of(content)
        if text:
            yield text
    for call in message.get("tool_calls") or ():
        arguments = (call.get("function") or {}).get("arguments") if isinstance(
            call, dict) else None
        if isinstance(arguments, str) and arguments:
            yield arguments


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of OpenAI content parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def data_url(url: str, provider: str) -> tuple[str, str]:
    """Split ``data:<media type>;base64,<data>`` into (media type, base64 data).

    Anything else (a remote URL) is refused with a 400 naming the provider: fetching
    remote images on the client's behalf is not something the gateway does silently.
    """
    if not url.startswith("data:"):
        raise unsupported(provider, "image_url with a remote URL",
                          "send the image inline as a data: URL (base64)")
    header, _, payload = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not payload:
        raise InvalidRequestError("image_url data URLs must be base64: data:<type>;base64,<data>",
                                  param="messages")
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("image_url data URL is not valid base64",
                                  param="messages") from None
    return media_type or "application/octet-stream", payload


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` (a JSON string) as an object; a 400 when it is not one."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            f"tool call arguments are not valid JSON: {str(arguments)[:100]!r}",
            param="messages") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("tool call arguments must be a JSON object", param="messages")
    return value


def max_tokens(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` (the newer name) or ``max_tokens``."""
    return body.get("max_completion_tokens") or body.get("max_tokens")


def stop_sequences(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def unsupported(provider: str, what: str, hint: str = "") -> InvalidRequestError:
    """The 400 for a request field a provider cannot express (never dropped silently)."""
    message = f"{provider} cannot express {what}"
    return InvalidRequestError(f"{message}: {hint}" if hint else message,
                               code="unsupported_parameter")


def chat_completion(
    *,
    response_id: str,
    model: str,
    provider: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created: int | None = None,
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object with one choice."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "provider": provider,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                     "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return body
