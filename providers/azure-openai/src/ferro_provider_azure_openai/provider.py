"""Azure OpenAI: the OpenAI wire format, at a deployment URL, with an ``api-key`` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from ferro import (
    ConfigError,
    ModelInfo,
    OpenAICompatibleProvider,
    ProviderSettings,
    UpstreamError,
)

from ferro_provider_azure_openai._wire import chat_url, is_prompt_filter_chunk, supports_stream_usage
from ferro_provider_azure_openai.config import AzureOptions


class AzureOpenAIProvider(OpenAICompatibleProvider):
    env_api_key = "AZURE_OPENAI_API_KEY"
    env_base_url = "AZURE_OPENAI_ENDPOINT"
    default_base_url = ""  # required: https://<resource>.openai.azure.com
    Options = AzureOptions

    def __init__(self, name: str, settings: ProviderSettings,
                 session: aiohttp.ClientSession | None) -> None:
        super().__init__(name, settings, session)
        options: AzureOptions = self.options
        self.stream_usage_option = supports_stream_usage(options.api_version)  # type: ignore[misc]
        self._fixed_url = (chat_url(self.base_url, options.deployment, options.api_version)
                           if options.deployment else None)

    # --- settings --------------------------------------------------------------------------

    @classmethod
    def options_from(cls, options: Any, env: Mapping[str, str], source: Any,
                     at: tuple[Any, ...]) -> Any:
        if isinstance(options, AzureOptions):
            return options
        data = dict(options or {})
        for key, var in (("deployment", "AZURE_OPENAI_DEPLOYMENT"),
                         ("api_version", "AZURE_OPENAI_API_VERSION")):
            if key not in data and env.get(var):
                data[key] = env[var]
        return super().options_from(data, env, source, at)

    @classmethod
    def resolve_settings(cls, name: str, settings: ProviderSettings, env: Mapping[str, str],
                         source: Any) -> ProviderSettings | None:
        resolved = super().resolve_settings(name, settings, env, source)
        if resolved is not None and not resolved.base_url:
            raise ConfigError(
                f"{source.locate(('providers', name))}: provider {name!r} (azure-openai) has "
                f"no endpoint: set base_url or the AZURE_OPENAI_ENDPOINT environment variable "
                f"to https://<resource>.openai.azure.com")
        return resolved

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        return bool(env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"))

    # --- wire ------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key}

    def chat_url(self, model: str) -> str:
        if self._fixed_url is not None:
            return self._fixed_url
        return chat_url(self.base_url, model, self.options.api_version)

    #: Azure opens a stream with a prompt-filter chunk an OpenAI client does not know
    #: (object "", no choices, no usage): it is not relayed.
    chunk_markers = (b'"prompt_filter_results"',)

    def adapt_chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        return None if is_prompt_filter_chunk(data) else data

    def upstream_error(self, status: int, raw: bytes,
                       headers: Mapping[str, str] | None = None) -> UpstreamError:
        error = super().upstream_error(status, raw, headers)
        if status == 400 and b'"content_filter"' in raw:  # the prompt was filtered
            error.code = "content_filter"
        return error

    # --- models ----------------------------------------------------------------------------

    async def discover_models(self) -> list[ModelInfo] | None:
        """Deployments cannot be listed with the data-plane key (that takes the management
        API and an Azure AD token): the configured deployment is what this provider serves."""
        deployment = self.options.deployment
        return [ModelInfo(deployment, self.name)] if deployment else []

    async def check_health(self) -> None:
        """No I/O: the data plane has no call that checks a deployment without spending
        tokens. Configuration (endpoint, key, deployment) was checked at startup."""
