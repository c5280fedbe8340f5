"""The Ollama provider: a local Ollama server through its OpenAI-compatible /v1 API."""

from ferro import hookimpl

from ferro_provider_ollama.provider import OllamaProvider

__all__ = ["OllamaProvider"]


@hookimpl
def register_providers(register):
    register("ollama", OllamaProvider)
