"""Azure OpenAI's own settings, beside the common ones (api_key, base_url = the endpoint)."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_API_VERSION", "AzureOptions"]

#: The GA data-plane version current when this package was written.
DEFAULT_API_VERSION = "2024-10-21"


@attrs.define
class AzureOptions:
    #: Model name (after ``model_map``) -> the deployment that serves it, for every
    #: operation: chat, embeddings and legacy completions.
    deployments: dict[str, str] = attrs.field(factory=dict)
    #: The deployment for chat requests whose model is not in ``deployments`` (the Go
    #: version's one-deployment setting). Unset, and for other operations: the model name.
    deployment: str | None = None
    api_version: str = DEFAULT_API_VERSION
