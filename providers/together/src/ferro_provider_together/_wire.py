"""Where Together's API differs from OpenAI's (pure functions, no I/O).

From Together's API reference (https://docs.together.ai/reference/chat-completions-1 and
its OpenAPI spec, https://github.com/togethercomputer/openapi):

- Chat: ``max_tokens`` is the only length limit; ``stop`` is a list of strings.
  ``logprobs`` is an integer (top-k) and log probabilities come back as
  ``{tokens, token_logprobs}``, not OpenAI's ``logprobs.content``.
- There is no ``stream_options``: every chunk carries ``usage`` (null until the last one).
- Legacy completions (``CompletionRequest``): ``prompt`` is one string; ``stop`` a list;
  ``logprobs`` an integer, answered as ``{tokens, token_logprobs}`` as OpenAI's legacy
  completions do; ``echo`` puts the prompt in a ``prompt`` field of its own; there is no
  ``suffix`` and no ``best_of``.
- Embeddings (``EmbeddingsRequest``): ``model`` and ``input`` (a string or a list of
  strings). ``user`` and ``dimensions`` are answered with a 400 "Unrecognized request
  arguments supplied"; ``encoding_format: base64`` was ignored (floats came back) until
  Together added it in 2025 (llama-stack's Together adapter notes, ogx-ai/ogx#3559).
- ``GET /models`` answers a bare list whose entries have a ``type`` (chat, language, code,
  image, embedding, ...).
"""

from __future__ import annotations

from typing import Any

from ferro import wire

__all__ = [
    "CHAT_TYPES",
    "completions_body",
    "embeddings_body",
    "served_models",
    "together_body",
]

#: Model types that answer chat completions.
CHAT_TYPES = frozenset({"chat", "language", "code"})

_DROPPED = ("stream_options", "logprobs", "top_logprobs", "max_completion_tokens")
#: Completion fields that ask for nothing when unset (``suffix: ""``, ``best_of: 1``).
_IDLE_COMPLETION_FIELDS = ("suffix", "best_of")
_EMBEDDING_DROPPED = ("user",)


def together_body(body: dict[str, Any]) -> dict[str, Any]:
    """The chat request body Together accepts; never mutates ``body``."""
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


def completions_body(body: dict[str, Any]) -> dict[str, Any]:
    """The legacy completions body Together accepts; never mutates ``body``. What it
    cannot express is a 400 naming the field."""
    if body.get("echo"):
        raise wire.unsupported(
            "together", "echo",
            "Together returns the echoed prompt in a field of its own, not at the start of "
            "the text; omit echo")
    if body.get("suffix"):
        raise wire.unsupported("together", "suffix", "Together has no insertion mode")
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        raise wire.unsupported("together", f"best_of={best_of}", "omit best_of or send 1")
    prompt = body.get("prompt")
    stop = body.get("stop")
    text = prompt is None or isinstance(prompt, str)
    if (text and not isinstance(stop, str)
            and not any(k in body for k in _IDLE_COMPLETION_FIELDS)):
        return body
    out = {k: v for k, v in body.items() if k not in _IDLE_COMPLETION_FIELDS}
    if not text:
        out["prompt"] = _one_prompt(prompt)
    if isinstance(stop, str):
        out["stop"] = [stop]
    return out


def _one_prompt(prompt: Any) -> str:
    """A list of prompts as Together's one string: a list of one is that one."""
    texts = isinstance(prompt, list) and bool(prompt) and all(isinstance(p, str) for p in prompt)
    if texts and len(prompt) == 1:
        return prompt[0]
    if texts:
        raise wire.unsupported("together", f"{len(prompt)} prompts in one request",
                               "Together completes one prompt per request: send one each")
    raise wire.unsupported("together", "token arrays in prompt", "send the prompt as text")


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """The embeddings body Together accepts; never mutates ``body``. ``user`` (which does
    not change the answer) is left out; ``dimensions`` is a 400."""
    if body.get("dimensions") is not None:
        raise wire.unsupported(
            "together", "dimensions",
            "Together's embedding models answer at their own size; omit dimensions")
    if not any(k in body for k in (*_EMBEDDING_DROPPED, "dimensions")):
        return body
    return {k: v for k, v in body.items() if k not in (*_EMBEDDING_DROPPED, "dimensions")}


def served_models(models: Any) -> list[tuple[str, tuple[str, ...]]]:
    """``(id, operations)`` of the models in a ``GET /models`` answer that the gateway
    serves: chat-capable ones (chat and legacy completions) and embedding ones."""
    items = models.get("data") if isinstance(models, dict) else models
    out = []
    for m in items or ():
        if not isinstance(m, dict) or "id" not in m:
            continue
        kind = m.get("type", "chat")
        if kind in CHAT_TYPES:
            out.append((str(m["id"]), ("chat", "completions")))
        elif kind == "embedding":
            out.append((str(m["id"]), ("embeddings",)))
    return out
