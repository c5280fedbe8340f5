"""Where Mistral's chat API differs from OpenAI's (pure functions, no I/O).

Mistral validates request bodies strictly: a field it does not define is answered with
``422 extra_forbidden`` ("Extra inputs are not permitted"). Its request schema
(https://docs.mistral.ai/api/#tag/chat, mirrored in mistralai/client-python 3.7.0
``ChatCompletionRequest``) has ``random_seed`` (not ``seed``), ``max_tokens`` (not
``max_completion_tokens``), ``logprobs``, ``top_logprobs``, ``prompt_cache_key`` and
``service_tier`` (``auto`` or ``standard_only``), and no ``stream_options`` (usage rides on the
last chunk), ``user``, ``store``, ``safety_identifier`` or ``logit_bias``. Its messages:
user and system ``{role, content}`` (no ``name``), tool ``{role, content, tool_call_id,
name}``, assistant ``{role, content, tool_calls, prefix}``; there is no ``developer`` role.
Tool call ids must be exactly nine characters from a-z, A-Z, 0-9. Its finish reasons are
``stop``, ``length``, ``model_length``, ``error`` and ``tool_calls``. Log probabilities come
as OpenAI's ``{content: [{token, logprob, bytes, top_logprobs}]}`` plus a ``token_id``, with
``top_logprobs`` null when none were asked for (OpenAI sends a list).
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
    "openai_logprobs",
    "tool_call_id",
]

#: OpenAI fields Mistral does not define and that do not change the answer: left out.
#: (``logit_bias`` only reaches this when empty: a non-empty one is refused.)
_DROPPED = ("user", "stream_options", "store", "safety_identifier", "logit_bias")
#: OpenAI name -> Mistral name.
_RENAMED = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}
#: OpenAI's service tiers as Mistral's: ``default`` is standard capacity, and ``auto`` is
#: how Mistral asks for Priority Tier (used when the organisation has it, else standard).
_SERVICE_TIERS = {"default": "standard_only", "priority": "auto"}
_ASSISTANT_KEYS = frozenset({"role", "content", "tool_calls", "prefix"})
#: Roles whose Mistral message has no ``name`` field.
_NAMELESS = frozenset({"user", "system"})
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")

#: Mistral finish reason -> OpenAI finish reason (``error`` is raised, not mapped).
FINISH_REASONS = {"model_length": "length"}


def mistral_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body Mistral accepts; never mutates ``body``."""
    if body.get("logit_bias"):
        raise wire.unsupported("mistral", "logit_bias", "Mistral has no logit_bias")
    out = {k: v for k, v in body.items() if k not in _DROPPED and k not in _RENAMED}
    tier = body.get("service_tier")
    if tier in ("flex", "scale"):
        raise wire.unsupported("mistral", f"service_tier {tier!r}",
                               "Mistral's tiers are standard and priority: send auto, default "
                               "or priority, or omit service_tier")
    if tier in _SERVICE_TIERS:
        out["service_tier"] = _SERVICE_TIERS[tier]
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
    """Messages in Mistral's shapes: ``developer`` as ``system``, no ``name`` where Mistral's
    message has none, assistant messages trimmed to Mistral's keys, tool call ids made
    Mistral-valid. Returns ``messages`` itself when nothing changes."""
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
    if role == "developer":
        role = "system"
        message = {**message, "role": role}
    if role in _NAMELESS:
        return {k: v for k, v in message.items() if k != "name"} if "name" in message else message
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


def openai_logprobs(choices: Any) -> None:
    """Mistral's log probabilities in OpenAI's shape, in place: ``top_logprobs`` always a
    list (Mistral sends null when none were asked for). ``token_id`` is kept."""
    for choice in choices or ():
        logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        for entry in entries or ():
            if isinstance(entry, dict) and entry.get("top_logprobs") is None:
                entry["top_logprobs"] = []


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
