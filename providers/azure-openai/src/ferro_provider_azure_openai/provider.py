"""Azure OpenAI: the OpenAI wire format, at a deployment URL, with an ``api-key`` header.
Chat, embeddings and legacy completions, each model at its own deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from ferro import (
    ConfigError,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelInfo,
    OpenAICompatibleProvider,
    ProviderSettings,
    UpstreamError,
    wire,
)

from ferro_provider_azure_openai._wire import (
    deployment_for,
    deployment_url,
    is_prompt_filter_chunk,
    supports_embedding_options,
    supports_stream_usage,
)
from ferro_provider_azure_openai.config import AzureOptions


class AzureOpenAIProvider(OpenAICompatibleProvider):
    env_api_key = "AZURE_OPENAI_API_KEY"
    env_base_url = "AZURE_OPENAI_ENDPOINT"
    default_base_url = ""  # required: https://<resource>.openai.azure.com
    Options = AzureOptions
    operations = OpenAICompatibleProvider.operations | {"embeddings"}
    #: Azure deploys the legacy completion models (gpt-35-turbo-instruct, davinci-002...).
    native_completions = True
    #: "Max number of inputs in array with /embeddings: 2048" (quotas and limits).
    max_embedding_batch = 2048

    def __init__(self, name: str, settings: ProviderSettings,
                 session: aiohttp.ClientSession | None) -> None:
        super().__init__(name, settings, session)
        options: AzureOptions = self.options
        # Applies to chat and completions streams alike (passthrough_body reads it).
        self.stream_usage_option = supports_stream_usage(options.api_version)  # type: ignore[misc]
        self._embedding_options = supports_embedding_options(options.api_version)

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
        if not isinstance(data.get("deployments", {}), Mapping):
            raise ConfigError(
                f"{source.locate((*at, 'deployments'))}: deployments must map model names to "
                f"deployment names, e.g. {{gpt-4o: my-gpt-4o, text-embedding-3-small: "
                f"my-embeddings}}")
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

    def deployment_name(self, path: str, model: str) -> str:
        """The deployment that serves ``model`` for the endpoint at ``path``."""
        options: AzureOptions = self.options
        return deployment_for(model, chat=path == self.chat_path,
                              deployments=options.deployments,
                              chat_deployment=options.deployment)

    def url(self, path: str, model: str) -> str:
        return deployment_url(self.base_url, self.deployment_name(path, model), path,
                              self.options.api_version)

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        if request.dimensions is not None and not self._embedding_options:
            raise wire.unsupported(
                self.name, f"dimensions on api-version {self.options.api_version}",
                "Azure takes dimensions from api-version 2024-03-01-preview (GA 2024-06-01) "
                "on: set api_version (or AZURE_OPENAI_API_VERSION) to 2024-10-21 or later")
        return await super().embeddings(request)

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
        API and an Azure AD token): the configured ones are what this provider serves, by
        the model names of ``deployments`` and the name of the one chat ``deployment``."""
        options: AzureOptions = self.options
        names = list(options.deployments)
        if options.deployment and options.deployment not in names:
            names.append(options.deployment)
        return [ModelInfo(name, self.name) for name in names]

    async def check_health(self) -> None:
        """No I/O: the data plane has no call that checks a deployment without spending
        tokens. Configuration (endpoint, key, deployments) was checked at startup."""
