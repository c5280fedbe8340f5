"""The Azure OpenAI provider: OpenAI models served from your Azure deployments."""

from ferro import hookimpl

from ferro_provider_azure_openai.provider import AzureOpenAIProvider

__all__ = ["AzureOpenAIProvider"]


@hookimpl
def register_providers(register):
    register("azure-openai", AzureOpenAIProvider)
