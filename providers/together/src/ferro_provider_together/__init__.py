"""The Together AI provider: Together's OpenAI-compatible chat API."""

from ferro import hookimpl

from ferro_provider_together.provider import TogetherProvider

__all__ = ["TogetherProvider"]


@hookimpl
def register_providers(register):
    register("together", TogetherProvider)
