"""An OpenAI embeddings request translated to Cohere's Embed API v2 (``POST /v2/embed``)
and its answer back (pure functions).

Reference: https://docs.cohere.com/reference/embed and the official SDK,
cohere-ai/cohere-python ``src/cohere/v2/client.py`` (``embed``: ``model``, ``input_type``,
``texts`` at most 96 per call, ``output_dimension``, ``embedding_types``, ``truncate``
``NONE|START|END``) and ``src/cohere/types/embed_by_type_response.py`` (``embeddings.float``,
``meta.billed_units.input_tokens``).
"""

from __future__ import annotations

from typing import Any

from ferro import InvalidRequestError
from ferro.embeddings import checked_vectors

__all__ = [
    "INPUT_TYPES",
    "MAX_BATCH",
    "TRUNCATE_MODES",
    "embed_answer",
    "embed_request",
    "input_type",
    "model_operations",
]

#: Most texts one ``/v2/embed`` call takes.
MAX_BATCH = 96
#: Cohere's input types for text (``image`` is for image inputs, which OpenAI's API has not).
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
TRUNCATE_MODES = ("NONE", "START", "END")
_CHAT = ("chat", "completions")


def input_type(body: dict[str, Any], default: str) -> str:
    """The ``input_type`` for a request: its own ``input_type`` field, else the configured one."""
    value = body.get("input_type")
    if value is None:
        value = default
    if value not in INPUT_TYPES:
        raise InvalidRequestError(
            f"input_type must be one of {', '.join(INPUT_TYPES)} (got {value!r})",
            param="input_type")
    return value


def embed_request(model: str, texts: list[str], *, input_type: str, truncate: str,
                  dimensions: int | None = None) -> dict[str, Any]:
    """The ``/v2/embed`` body for ``texts`` (at most :data:`MAX_BATCH`), float vectors only."""
    out: dict[str, Any] = {"model": model, "texts": texts, "input_type": input_type,
                           "embedding_types": ["float"], "truncate": truncate}
    if dimensions is not None:
        out["output_dimension"] = dimensions
    return out


def embed_answer(data: Any, expected: int, provider: str) -> tuple[list[list[float]], int]:
    """``(vectors, input tokens)`` of a ``/v2/embed`` answer for ``expected`` texts."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    vectors = embeddings.get("float") if isinstance(embeddings, dict) else None
    return checked_vectors(vectors, expected, provider, data), _input_tokens(data.get("meta"))


def _input_tokens(meta: Any) -> int:
    meta = meta if isinstance(meta, dict) else {}
    for key in ("billed_units", "tokens"):
        units = meta.get(key)
        count = units.get("input_tokens") if isinstance(units, dict) else None
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0:
            return int(count)
    return 0


def model_operations(endpoints: Any) -> tuple[str, ...] | None:
    """The gateway operations a model serves, from its ``endpoints`` in ``GET /v1/models``
    (None when the listing does not say): ``chat`` serves chat and legacy completions,
    ``embed`` embeddings."""
    if not isinstance(endpoints, list):
        return None
    ops: tuple[str, ...] = _CHAT if "chat" in endpoints else ()
    if "embed" in endpoints:
        ops += ("embeddings",)
    return ops
