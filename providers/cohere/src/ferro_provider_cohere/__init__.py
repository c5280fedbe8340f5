"""The Cohere provider: OpenAI chat completions translated to Cohere's Chat API v2."""

from ferro import hookimpl

from ferro_provider_cohere.provider import CohereProvider

__all__ = ["CohereProvider"]


@hookimpl
def register_providers(register):
    register("cohere", CohereProvider)
