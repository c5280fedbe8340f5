"""The ``max-tokens`` guardrail, also registered under the older gateway's name
``max-token`` (whose configs load unchanged)."""

from ferro import hookimpl

from ferro_guardrail_max_tokens.options import Options
from ferro_guardrail_max_tokens.plugin import MaxTokens

__all__ = ["MaxTokens", "Options"]


@hookimpl
def register_plugins(register):
    register("max-tokens", MaxTokens)
    register("max-token", MaxTokens)
