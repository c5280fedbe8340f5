"""Where DeepSeek's chat API differs from OpenAI's (pure functions, no I/O).

From DeepSeek's API docs (https://api-docs.deepseek.com/api/create-chat-completion,
https://api-docs.deepseek.com/guides/reasoning_model, .../guides/kv_cache):

- The base URL has no ``/v1``: ``POST https://api.deepseek.com/chat/completions``.
- ``max_tokens`` is the only length limit; there is no ``n`` and no ``seed``;
  ``response_format`` is ``text`` or ``json_object`` (no ``json_schema``: the provider
  emulates that with a forced tool, :mod:`ferro.json_tool`, before this module sees it).
- Thinking models return ``reasoning_content`` beside ``content`` (in messages and deltas);
  it passes through untouched.
- Usage reports ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``; the OpenAI
  place for the first is ``prompt_tokens_details.cached_tokens``.
- ``finish_reason`` may be ``insufficient_system_resource``: the answer was cut short
  because DeepSeek ran out of capacity.
"""

from __future__ import annotations

from typing import Any

from ferro import wire

__all__ = ["OVERLOADED_FINISH", "deepseek_body", "usage_with_cached_tokens"]

OVERLOADED_FINISH = "insufficient_system_resource"


def deepseek_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body DeepSeek accepts; never mutates ``body``."""
    n = body.get("n")
    if n is not None and n != 1:
        raise wire.unsupported("deepseek", f"n={n}",
                               "DeepSeek returns one choice per request; send n=1 or omit n")
    if "max_completion_tokens" not in body:
        return body
    out = {k: v for k, v in body.items() if k != "max_completion_tokens"}
    limit = wire.max_tokens(body)
    if limit is not None:
        out["max_tokens"] = limit
    return out


def usage_with_cached_tokens(usage: dict[str, Any]) -> bool:
    """Copy ``prompt_cache_hit_tokens`` into ``prompt_tokens_details.cached_tokens`` in
    place when DeepSeek did not fill that itself; True when changed."""
    hit = usage.get("prompt_cache_hit_tokens")
    details = usage.get("prompt_tokens_details")
    if not hit or (isinstance(details, dict) and details.get("cached_tokens")):
        return False
    usage["prompt_tokens_details"] = {**(details or {}), "cached_tokens": hit}
    return True
