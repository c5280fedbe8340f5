"""Where Groq's chat API differs from OpenAI's (pure functions, no I/O).

Groq documents that ``logprobs``, ``logit_bias``, ``top_logprobs``, ``messages[].name`` and
``n`` other than 1 are answered with a 400 whenever they are supplied
(https://console.groq.com/docs/openai). A value that asks for something is refused here
with a message that says why; a value that asks for nothing (``logprobs: false``, an empty
``logit_bias``, ``n: 1``) and participant names are left out so the request goes through.
"""

from __future__ import annotations

from typing import Any

from ferro import wire

__all__ = ["groq_body", "x_groq_error"]

_NEUTRAL = ("logprobs", "top_logprobs", "logit_bias")


def groq_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body Groq accepts; never mutates ``body``."""
    n = body.get("n")
    if n is not None and n != 1:
        raise wire.unsupported("groq", f"n={n}",
                               "Groq returns one choice per request; send n=1 or omit n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise wire.unsupported("groq", "logprobs",
                               "Groq does not return log probabilities; omit logprobs")
    if body.get("logit_bias"):
        raise wire.unsupported("groq", "logit_bias", "Groq does not support logit_bias")
    out = body
    if any(key in body for key in _NEUTRAL):
        out = {k: v for k, v in body.items() if k not in _NEUTRAL}
    messages = body.get("messages") or ()
    if any("name" in m for m in messages):
        out = {**out, "messages": [{k: v for k, v in m.items() if k != "name"}
                                   if "name" in m else m for m in messages]}
    return out


def x_groq_error(chunk: dict[str, Any]) -> str | None:
    """The error Groq reports inside a stream chunk (``x_groq.error``: why a stream was
    stopped early), or None."""
    extra = chunk.get("x_groq")
    if isinstance(extra, dict) and extra.get("error"):
        return str(extra["error"])
    return None
