"""The Gemini provider: the OpenAI chat API translated to Google's Gemini API
(``generateContent`` / ``streamGenerateContent``)."""

from ferro import hookimpl

from ferro_provider_gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]


@hookimpl
def register_providers(register):
    register("gemini", GeminiProvider)
