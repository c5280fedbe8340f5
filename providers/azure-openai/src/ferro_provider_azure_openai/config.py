"""Azure OpenAI's own settings, beside the common ones (api_key, base_url = the endpoint)."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_API_VERSION", "AzureOptions"]

#: The GA data-plane version current when this package was written.
DEFAULT_API_VERSION = "2024-10-21"


@attrs.define
class AzureOptions:
    #: Deployment that serves every request; unset: the request's (mapped) model name.
    deployment: str | None = None
    api_version: str = DEFAULT_API_VERSION
