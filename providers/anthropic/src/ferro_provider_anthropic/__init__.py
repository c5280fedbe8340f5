"""The Anthropic provider: OpenAI chat completions translated to and from Claude's
Messages API."""

from ferro import hookimpl

from ferro_provider_anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]


@hookimpl
def register_providers(register):
    register("anthropic", AnthropicProvider)
