"""The DeepSeek provider: DeepSeek's OpenAI-compatible chat API."""

from ferro import hookimpl

from ferro_provider_deepseek.provider import DeepSeekProvider

__all__ = ["DeepSeekProvider"]


@hookimpl
def register_providers(register):
    register("deepseek", DeepSeekProvider)
