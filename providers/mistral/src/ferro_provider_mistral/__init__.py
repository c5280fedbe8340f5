"""The Mistral AI provider: La Plateforme's chat completions API."""

from ferro import hookimpl

from ferro_provider_mistral.provider import MistralProvider

__all__ = ["MistralProvider"]


@hookimpl
def register_providers(register):
    register("mistral", MistralProvider)
