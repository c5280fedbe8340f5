"""An OpenAI embeddings request translated to Gemini's ``embedContent`` (one input) and
``batchEmbedContents`` (several), and their answers back (pure functions).

Reference: https://ai.google.dev/api/embeddings (``EmbedContentRequest``: ``model``,
``content``, ``taskType``, ``outputDimensionality``; ``EmbedContentResponse.embedding`` and
``BatchEmbedContentsResponse.embeddings``, ``ContentEmbedding.values``), the task types at
https://ai.google.dev/gemini-api/docs/embeddings, and the google-genai SDK, which sends every
request of a batch with its own ``model``. Recent models also answer ``usageMetadata``
(``promptTokenCount``); older ones report no token count at all.
"""

from __future__ import annotations

from typing import Any

from ferro import InvalidRequestError
from ferro.embeddings import checked_vectors

__all__ = [
    "MAX_BATCH",
    "batch_answer",
    "batch_request",
    "embed_request",
    "model_operations",
    "single_answer",
    "task_type",
    "task_type_name",
]

#: Most requests one ``batchEmbedContents`` call takes.
MAX_BATCH = 100
_CHAT = ("chat", "completions")
_EMBED_METHODS = frozenset({"embedContent", "batchEmbedContents"})


def task_type_name(value: Any) -> Any:
    """A task type as Gemini spells it (``retrieval_query`` -> ``RETRIEVAL_QUERY``); an empty
    string is no task type. Anything but a string is returned as is, for the caller to refuse."""
    if isinstance(value, str):
        return value.strip().upper() or None
    return value


def task_type(body: dict[str, Any], default: str | None) -> str | None:
    """The ``taskType`` for a request: its own ``task_type`` field, else the configured one."""
    if "task_type" not in body:
        return default
    value = task_type_name(body["task_type"])
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(
            f"task_type must be a Gemini task type such as RETRIEVAL_QUERY or "
            f"RETRIEVAL_DOCUMENT (got {body['task_type']!r})", param="task_type")
    return value


def embed_request(model_path: str, text: str, *, task_type: str | None = None,
                  dimensions: int | None = None) -> dict[str, Any]:
    """One ``EmbedContentRequest``: the body of ``embedContent``, an item of a batch."""
    out: dict[str, Any] = {"model": model_path, "content": {"parts": [{"text": text}]}}
    if task_type:
        out["taskType"] = task_type
    if dimensions is not None:
        out["outputDimensionality"] = dimensions
    return out


def batch_request(model_path: str, texts: list[str], *, task_type: str | None = None,
                  dimensions: int | None = None) -> dict[str, Any]:
    """The ``batchEmbedContents`` body: one request per text, in order."""
    return {"requests": [embed_request(model_path, t, task_type=task_type,
                                       dimensions=dimensions) for t in texts]}


def single_answer(data: Any, provider: str) -> tuple[list[list[float]], int]:
    """``(vectors, prompt tokens)`` of an ``embedContent`` answer."""
    embedding = data.get("embedding") if isinstance(data, dict) else None
    return _vectors([embedding], 1, data, provider), _prompt_tokens(data)


def batch_answer(data: Any, expected: int, provider: str) -> tuple[list[list[float]], int]:
    """``(vectors, prompt tokens)`` of a ``batchEmbedContents`` answer for ``expected`` texts."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    return _vectors(embeddings, expected, data, provider), _prompt_tokens(data)


def _vectors(embeddings: Any, expected: int, data: Any, provider: str) -> list[list[float]]:
    values = ([e.get("values") if isinstance(e, dict) else None for e in embeddings]
              if isinstance(embeddings, list) else None)
    return checked_vectors(values, expected, provider, data)


def _prompt_tokens(data: Any) -> int:
    usage = data.get("usageMetadata") if isinstance(data, dict) else None
    count = usage.get("promptTokenCount") if isinstance(usage, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def model_operations(methods: Any) -> tuple[str, ...] | None:
    """The gateway operations a model serves, from its ``supportedGenerationMethods``
    (None when the listing does not say): ``generateContent`` serves chat and legacy
    completions, ``embedContent`` embeddings."""
    if not isinstance(methods, list):
        return None
    ops: tuple[str, ...] = _CHAT if "generateContent" in methods else ()
    if _EMBED_METHODS.intersection(methods):
        ops += ("embeddings",)
    return ops
