"""Azure OpenAI's URL shape and version rules (pure functions, no I/O).

Data-plane inference API (https://learn.microsoft.com/azure/ai-services/openai/reference,
spec: Azure/azure-rest-api-specs specification/cognitiveservices/data-plane/AzureOpenAI/
inference/stable/2024-10-21/inference.json):
``POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=V`` with
an ``api-key`` header. ``stream_options.include_usage`` is accepted from 2024-09-01-preview
on (and by GA 2024-10-21); older versions answer "Unrecognized request argument supplied:
stream_options". A stream opens with a chunk that carries only ``prompt_filter_results``
(``object: ""``, no choices).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

__all__ = ["chat_url", "is_prompt_filter_chunk", "supports_stream_usage"]

_FIRST_STREAM_USAGE_VERSION = "2024-09-01"


def chat_url(endpoint: str, deployment: str, api_version: str) -> str:
    return (f"{endpoint}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
            f"?api-version={quote(api_version, safe='')}")


def supports_stream_usage(api_version: str) -> bool:
    """Whether this api-version accepts ``stream_options`` (dated versions before
    2024-09-01 do not; undated ones such as ``preview`` or ``latest`` are newer)."""
    if api_version[:4].isdigit():
        return api_version[:10] >= _FIRST_STREAM_USAGE_VERSION
    return True


def is_prompt_filter_chunk(chunk: dict[str, Any]) -> bool:
    """Whether a stream chunk is Azure's prompt-filter preamble: no choices, no usage."""
    return "prompt_filter_results" in chunk and not chunk.get("choices") \
        and not chunk.get("usage")
