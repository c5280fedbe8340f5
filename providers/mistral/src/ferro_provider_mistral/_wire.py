"""Where Mistral's chat API differs from OpenAI's (pure functions, no I/O).

Mistral validates request bodies strictly: a field it does not define is answered with
``422 extra_forbidden`` ("Extra inputs are not permitted"). Its request schema
(https://docs.mistral.ai/api/#tag/chat, mirrored in mistralai/client-python
``ChatCompletionRequest``) has ``random_seed`` (not ``seed``), ``max_tokens`` (not
``max_completion_tokens``), no ``stream_options`` (usage rides on the last chunk), no
``user``, ``logprobs`` or ``logit_bias``. Assistant messages are ``{role, content,
tool_calls, prefix}``, and tool call ids must be exactly nine characters from a-z, A-Z, 0-9.
Its finish reasons are ``stop``, ``length``, ``model_length``, ``error`` and ``tool_calls``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ferro import wire

__all__ = [
    "FINISH_REASONS",
    "error_detail",
    "mistral_body",
    "tool_call_id",
]

#: OpenAI fields Mistral does not define and that do not change the answer: left out.
_DROPPED = ("user", "stream_options", "service_tier", "store", "safety_identifier",
            "prompt_cache_key", "logprobs", "top_logprobs", "logit_bias")
#: OpenAI name -> Mistral name.
_RENAMED = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}
_ASSISTANT_KEYS = frozenset({"role", "content", "tool_calls", "prefix"})
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")

#: Mistral finish reason -> OpenAI finish reason (``error`` is raised, not mapped).
FINISH_REASONS = {"model_length": "length"}


def mistral_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body Mistral accepts; never mutates ``body``."""
    if body.get("logprobs") or body.get("top_logprobs"):
        raise wire.unsupported("mistral", "logprobs",
                               "Mistral does not return log probabilities; omit logprobs")
    if body.get("logit_bias"):
        raise wire.unsupported("mistral", "logit_bias", "Mistral has no logit_bias")
    out = {k: v for k, v in body.items() if k not in _DROPPED and k not in _RENAMED}
    # Mistral's own name, when sent too, wins over seed; the newer OpenAI name wins over
    # max_tokens.
    if body.get("seed") is not None and "random_seed" not in body:
        out["random_seed"] = body["seed"]
    if body.get("max_completion_tokens") is not None:
        out["max_tokens"] = body["max_completion_tokens"]
    messages = body.get("messages")
    if messages:
        fixed = _messages(messages)
        if fixed is not messages:
            out["messages"] = fixed
    return out


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assistant messages trimmed to Mistral's keys, tool call ids made Mistral-valid.
    Returns ``messages`` itself when nothing changes."""
    out: list[dict[str, Any]] | None = None
    for i, message in enumerate(messages):
        fixed = _message(message)
        if fixed is not message and out is None:
            out = list(messages[:i])
        if out is not None:
            out.append(fixed)
    return messages if out is None else out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    role = message.get("role")
    if role == "assistant":
        calls = message.get("tool_calls")
        if message.keys() <= _ASSISTANT_KEYS and not _needs_new_ids(calls):
            return message
        out = {k: v for k, v in message.items() if k in _ASSISTANT_KEYS}
        if calls:
            out["tool_calls"] = [{**c, "id": tool_call_id(c.get("id", ""))} for c in calls]
        return out
    if role == "tool":
        call_id = message.get("tool_call_id")
        if isinstance(call_id, str) and not _TOOL_CALL_ID.fullmatch(call_id):
            return {**message, "tool_call_id": tool_call_id(call_id)}
    return message


def _needs_new_ids(calls: Any) -> bool:
    return bool(calls) and any(not _TOOL_CALL_ID.fullmatch(str(c.get("id", ""))) for c in calls)


def tool_call_id(call_id: str) -> str:
    """A Mistral-valid tool call id (nine characters, a-z A-Z 0-9) standing for ``call_id``:
    the id itself when already valid, else a stable digest of it, so an assistant tool call
    and the tool result answering it keep matching."""
    if _TOOL_CALL_ID.fullmatch(call_id):
        return call_id
    return hashlib.sha256(call_id.encode()).hexdigest()[:9]


def error_detail(payload: Any) -> str | None:
    """The message of a Mistral error body. Validation errors carry a list of
    ``{loc, msg}`` entries (in ``message.detail`` or ``detail``); each becomes
    ``body.field: msg``."""
    if not isinstance(payload, dict):
        return None
    message = payload.get("message")
    if isinstance(message, str):
        return message
    detail = message.get("detail") if isinstance(message, dict) else payload.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc") or ())
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg")))
        return "; ".join(parts) or None
    return None
