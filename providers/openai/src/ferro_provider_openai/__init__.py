"""The OpenAI provider: the OpenAI wire format, passed through whole."""

from ferro import hookimpl

from ferro_provider_openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider"]


@hookimpl
def register_providers(register):
    register("openai", OpenAIProvider)
