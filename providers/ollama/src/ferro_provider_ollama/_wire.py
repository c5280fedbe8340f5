"""Where Ollama's OpenAI-compatible API differs from OpenAI's, and embeddings through
Ollama's native ``/api/embed`` (pure functions, no I/O).

Ollama's compatibility page (https://docs.ollama.com/api/openai-compatibility, source
docs/api/openai-compatibility.mdx in ollama/ollama) lists the ``/v1/chat/completions``
request fields it supports; ``tool_choice``, ``logit_bias``, ``user`` and ``n`` are listed
as unsupported, and ``max_tokens`` is the only length limit. Fields it does not know are
ignored, so what would change the answer is translated or refused here.

Embeddings use the native ``POST /api/embed`` (https://docs.ollama.com/api/embed, source
``api/types.go`` ``EmbedRequest`` / ``EmbedResponse`` in ollama/ollama): ``model``,
``input`` (a string or a list), ``truncate`` (default true), ``dimensions``; the answer has
``embeddings`` (one vector per input, in order) and ``prompt_eval_count``.

``OLLAMA_HOST`` is read the way Ollama's own client reads it (envconfig.Host): a bare
``host:port`` means ``http://``, and a host without a port on plain http gets 11434.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ferro import UpstreamError, wire
from ferro.embeddings import checked_vectors

__all__ = ["DEFAULT_PORT", "embed_answer", "embed_request", "host_url", "model_names",
           "ollama_body"]

DEFAULT_PORT = 11434


def host_url(host: str) -> str:
    """The base URL for an ``OLLAMA_HOST`` value (or a configured base URL)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
        parts = urlsplit(host)
        if parts.port is None:
            name = parts.hostname or "127.0.0.1"
            name = f"[{name}]" if ":" in name else name  # an IPv6 address
            host = f"http://{name}:{DEFAULT_PORT}{parts.path}"
    if host.endswith("/v1"):  # the OpenAI-compatible URL users often paste
        host = host[:-3]
    return host


def ollama_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request body Ollama's /v1 API honours; never mutates ``body``."""
    n = body.get("n")
    if n is not None and n != 1:
        raise wire.unsupported("ollama", f"n={n}",
                               "Ollama returns one choice per request; send n=1 or omit n")
    if body.get("logit_bias"):
        raise wire.unsupported("ollama", "logit_bias", "Ollama ignores logit_bias")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise wire.unsupported(
            "ollama", f"tool_choice {choice!r}",
            "Ollama cannot force a tool call; use tool_choice \"auto\" or \"none\"")
    if "tool_choice" not in body and "max_completion_tokens" not in body:
        return body
    out = {k: v for k, v in body.items() if k not in ("tool_choice", "max_completion_tokens")}
    if choice == "none":  # "call no tool" is expressed by offering none
        out.pop("tools", None)
    limit = wire.max_tokens(body)
    if limit is not None:
        out["max_tokens"] = limit
    return out


def model_names(tags: Any) -> list[str]:
    """Model names from a ``GET /api/tags`` answer: ``{"models": [{"name": ...}, ...]}``."""
    models = tags.get("models") if isinstance(tags, dict) else None
    return [str(m["name"]) for m in models or () if isinstance(m, dict) and m.get("name")]


def embed_request(model: str, texts: list[str], *, truncate: bool,
                  dimensions: int | None = None) -> dict[str, Any]:
    """The ``/api/embed`` body for ``texts``."""
    out: dict[str, Any] = {"model": model, "input": texts, "truncate": truncate}
    if dimensions is not None:
        out["dimensions"] = dimensions
    return out


def embed_answer(data: Any, expected: int, provider: str,
                 dimensions: int | None = None) -> tuple[list[list[float]], int]:
    """``(vectors, prompt tokens)`` of an ``/api/embed`` answer for ``expected`` texts. When
    ``dimensions`` was asked for, vectors of another length are an error: Ollama versions
    without ``dimensions`` ignore it and answer full-size vectors."""
    vectors = checked_vectors(data.get("embeddings") if isinstance(data, dict) else None,
                              expected, provider, data)
    if dimensions is not None and any(len(v) != dimensions for v in vectors):
        raise UpstreamError(
            f"{provider} answered {len(vectors[0])}-dimension vectors for dimensions="
            f"{dimensions}: this Ollama server does not support dimensions (upgrade it), or "
            f"the model cannot shorten its vectors", status=502, provider=provider,
            code="invalid_upstream_response", retryable=False)
    count = data.get("prompt_eval_count")
    tokens = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0
    return vectors, tokens
