"""Azure OpenAI's URL shape, deployment choice and version rules (pure functions, no I/O).

Data-plane inference API (https://learn.microsoft.com/azure/ai-services/openai/reference,
spec: Azure/azure-rest-api-specs specification/cognitiveservices/data-plane/AzureOpenAI/
inference/stable/2024-10-21/inference.json): ``POST {endpoint}/openai/deployments/
{deployment-id}/{chat/completions | completions | embeddings}?api-version=V`` with an
``api-key`` header.

- ``stream_options.include_usage`` is accepted from 2024-09-01-preview on (and by GA
  2024-10-21); older versions answer "Unrecognized request argument supplied:
  stream_options".
- Embeddings' ``dimensions`` and ``encoding_format`` appear in 2024-03-01-preview (GA
  2024-06-01); 2024-02-01 and 2024-02-15-preview have neither.
- A stream opens with a chunk that carries only ``prompt_filter_results`` (``object: ""``,
  no choices).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = [
    "deployment_for",
    "deployment_url",
    "is_prompt_filter_chunk",
    "supports_embedding_options",
    "supports_stream_usage",
]

_FIRST_STREAM_USAGE_VERSION = "2024-09-01"
_FIRST_EMBEDDING_OPTIONS_VERSION = "2024-03-01"


def deployment_url(endpoint: str, deployment: str, path: str, api_version: str) -> str:
    """The URL of endpoint ``path`` (``/chat/completions``, ``/embeddings``...) of a
    deployment."""
    return (f"{endpoint}/openai/deployments/{quote(deployment, safe='')}{path}"
            f"?api-version={quote(api_version, safe='')}")


def deployment_for(model: str, *, chat: bool, deployments: Mapping[str, str],
                   chat_deployment: str | None) -> str:
    """The deployment that serves ``model``: its entry in ``deployments``, else (for chat)
    the one chat deployment, else the model name itself."""
    found = deployments.get(model)
    if found is not None:
        return found
    if chat and chat_deployment:
        return chat_deployment
    return model


def _since(api_version: str, first: str) -> bool:
    """Whether a dated api-version is ``first`` or later; undated ones (``preview``,
    ``latest``) are newer than any date."""
    if api_version[:4].isdigit():
        return api_version[:10] >= first
    return True


def supports_stream_usage(api_version: str) -> bool:
    """Whether this api-version accepts ``stream_options`` (dated versions before
    2024-09-01 do not; undated ones such as ``preview`` or ``latest`` are newer)."""
    return _since(api_version, _FIRST_STREAM_USAGE_VERSION)


def supports_embedding_options(api_version: str) -> bool:
    """Whether this api-version's embeddings take ``dimensions`` and ``encoding_format``."""
    return _since(api_version, _FIRST_EMBEDDING_OPTIONS_VERSION)


def is_prompt_filter_chunk(chunk: dict[str, Any]) -> bool:
    """Whether a stream chunk is Azure's prompt-filter preamble: no choices, no usage."""
    return "prompt_filter_results" in chunk and not chunk.get("choices") \
        and not chunk.get("usage")
