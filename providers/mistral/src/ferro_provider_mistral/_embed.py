"""Where Mistral's embeddings API differs from OpenAI's (pure functions, no I/O).

``POST /v1/embeddings`` (mistralai/client-python 3.7.0 ``EmbeddingRequest``) takes
``model``, ``input`` (a string or a list of strings: no token arrays), ``output_dimension``
(OpenAI's ``dimensions``), ``output_dtype``, ``encoding_format`` and ``metadata``; no
``user``. The SDK's answer model (``EmbeddingResponseData.embedding``) is a list of floats,
so the gateway always asks for floats and encodes ``base64`` itself
(``ferro.embeddings.encode_as_asked``, little-endian float32 as OpenAI sends it). At most
512 inputs go in one request (Mistral answers more with "Too many inputs in request, split
into more batches", code 3210).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_INPUTS", "embeddings_body"]

MAX_INPUTS = 512


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """The embeddings body Mistral accepts; never mutates ``body``. An explicit
    ``output_dimension`` wins over ``dimensions``."""
    out = {k: v for k, v in body.items() if k not in ("dimensions", "user")}
    if body.get("dimensions") is not None and "output_dimension" not in body:
        out["output_dimension"] = body["dimensions"]
    out["encoding_format"] = "float"
    return out
