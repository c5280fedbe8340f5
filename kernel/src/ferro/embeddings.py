"""Helpers for providers that serve embeddings: the OpenAI answer shape, ``base64``
encoding, and batches split to a provider's limit and merged back in order."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ferro import wire
from ferro.errors import UpstreamError
from ferro.operations import EmbeddingsRequest, EmbeddingsResponse

__all__ = [
    "embeddings_response",
    "encode_vector",
    "in_batches",
    "merge_embeddings",
    "text_inputs",
]

T = TypeVar("T")

#: How many batches of one request go to the upstream at once.
MAX_PARALLEL_BATCHES = 4


def text_inputs(request: EmbeddingsRequest, provider: str) -> list[str]:
    """The inputs as strings; token arrays are a 400 (only OpenAI's API takes them)."""
    inputs = request.inputs
    if any(not isinstance(item, str) for item in inputs):
        raise wire.unsupported(provider, "token arrays in input",
                               "send the input as text (a string or a list of strings)")
    return inputs


def checked_vectors(vectors: Any, expected: int, provider: str,
                    answer: Any) -> list[list[float]]:
    """``vectors`` when it is one list of numbers per input, else the 502 for an upstream
    answer (``answer``, quoted) that does not match the ``expected`` inputs."""
    if isinstance(vectors, list) and len(vectors) == expected \
            and all(isinstance(v, list) for v in vectors):
        return vectors
    raise UpstreamError(
        f"{provider} answered embeddings that do not match the {expected} input(s): "
        f"{str(answer)[:200]}", status=502, provider=provider,
        code="invalid_upstream_response", retryable=True)


def encode_vector(vector: Sequence[float]) -> str:
    """A vector as OpenAI's ``encoding_format: base64`` sends it: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def encode_as_asked(request: EmbeddingsRequest, body: dict[str, Any]) -> None:
    """Encode, in place, float vectors of an upstream answer when the client asked for
    ``base64`` (an upstream that ignores ``encoding_format`` answers floats)."""
    if request.encoding_format != "base64":
        return
    for item in body.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item["embedding"] = encode_vector(vector)


def embeddings_response(request: EmbeddingsRequest, vectors: Sequence[Sequence[float]], *,
                        provider: str, prompt_tokens: int = 0,
                        model: str | None = None) -> EmbeddingsResponse:
    """The OpenAI embeddings answer for ``vectors`` (one per input, in order), encoded as
    the request's ``encoding_format`` asks."""
    as_base64 = request.encoding_format == "base64"
    data = [{"object": "embedding", "index": i,
             "embedding": encode_vector(v) if as_base64 else list(v)}
            for i, v in enumerate(vectors)]
    return EmbeddingsResponse({
        "object": "list",
        "data": data,
        "model": model or request.model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "provider": provider,
        "created": int(time.time()),
    })


async def in_batches(items: Sequence[T], size: int,
                     call: Callable[[list[T]], Awaitable[Any]]) -> list[Any]:
    """``call`` on each batch of at most ``size`` items, a few at a time; the results in
    batch order. The first failure cancels the rest and is raised."""
    batches = [list(items[i:i + size]) for i in range(0, len(items), size)] or [[]]
    if len(batches) == 1:
        return [await call(batches[0])]
    limit = asyncio.Semaphore(MAX_PARALLEL_BATCHES)

    async def one(batch: list[T]) -> Any:
        async with limit:
            return await call(batch)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(b)) for b in batches]
    except BaseExceptionGroup as failed:  # the batch's own error, not the group
        first = next((e for e in failed.exceptions
                      if not isinstance(e, asyncio.CancelledError)), failed.exceptions[0])
        raise first from None
    return [t.result() for t in tasks]


async def embed_in_batches(
        request: EmbeddingsRequest, texts: Sequence[str], size: int,
        call: Callable[[list[str]], Awaitable[tuple[list[list[float]], int]]], *,
        provider: str) -> EmbeddingsResponse:
    """The OpenAI answer for ``texts``, embedded by ``call(batch) -> (vectors, tokens)`` on
    batches of at most ``size`` (see :func:`in_batches`), vectors in order, tokens summed."""
    answers = await in_batches(texts, size, call)
    vectors = [v for batch_vectors, _ in answers for v in batch_vectors]
    return embeddings_response(request, vectors, provider=provider,
                               prompt_tokens=sum(tokens for _, tokens in answers))


def merge_embeddings(bodies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI embeddings answers of consecutive batches as one: data re-indexed in order,
    usage summed."""
    first = dict(bodies[0])
    if len(bodies) == 1:
        return first
    data: list[Any] = []
    prompt = total = 0
    for body in bodies:
        items = sorted(body.get("data") or (), key=lambda d: d.get("index", 0))
        base = len(data)
        data.extend({**item, "index": base + k} for k, item in enumerate(items))
        usage = body.get("usage") or {}
        prompt += usage.get("prompt_tokens") or 0
        total += usage.get("total_tokens") or 0
    first["data"] = data
    first["usage"] = {"prompt_tokens": prompt, "total_tokens": total or prompt}
    return first
