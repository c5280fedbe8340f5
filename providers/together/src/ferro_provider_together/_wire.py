"""Where Together's chat API differs from OpenAI's (pure functions, no I/O).

From Together's API reference (https://docs.together.ai/reference/chat-completions-1 and
its OpenAPI spec, https://github.com/togethercomputer/openapi):

- ``max_tokens`` is the only length limit; ``stop`` is a list of strings.
- ``logprobs`` is an integer (top-k) and log probabilities come back as
  ``{tokens, token_logprobs}``, not OpenAI's ``logprobs.content``.
- There is no ``stream_options``: every chunk carries ``usage`` (null until the last one).
- ``GET /models`` answers a bare list whose entries have a ``type`` (chat, language, code,
  image, embedding, ...).
"""

from __future__ import annotations

from typing import Any

from ferro import wire

__all__ = ["CHAT_TYPES", "chat_model_ids", "together_body"]

#: Model types that answer chat completions.
CHAT_TYPES = frozenset({"chat", "language", "code"})

_DROPPED = ("stream_options", "logprobs", "top_logprobs", "max_completion_tokens")


def together_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body Together accepts; never mutates ``body``."""
    if body.get("logprobs"):
        raise wire.unsupported(
            "together", "logprobs",
            "Together returns log probabilities in its own shape (tokens, token_logprobs), "
            "not OpenAI's logprobs.content; omit logprobs")
    stop = body.get("stop")
    limit = body.get("max_completion_tokens")
    if not any(k in body for k in _DROPPED) and not isinstance(stop, str):
        return body
    out = {k: v for k, v in body.items() if k not in _DROPPED}
    if limit is not None:
        out["max_tokens"] = limit
    if isinstance(stop, str):
        out["stop"] = [stop]
    return out


def chat_model_ids(models: Any) -> list[str]:
    """The ids of the chat-capable models in a ``GET /models`` answer."""
    items = models.get("data") if isinstance(models, dict) else models
    return [str(m["id"]) for m in items or () if isinstance(m, dict) and "id" in m
            and m.get("type", "chat") in CHAT_TYPES]
