"""The Groq provider: Groq's OpenAI-compatible API, with the fields Groq rejects handled."""

from ferro import hookimpl

from ferro_provider_groq.provider import GroqProvider

__all__ = ["GroqProvider"]


@hookimpl
def register_providers(register):
    register("groq", GroqProvider)
