"""Anthropic-specific config keys (beside the common ``api_key``, ``base_url``, ``headers``…)."""

from __future__ import annotations

import attrs

#: ``max_tokens`` sent when the client gives neither ``max_tokens`` nor
#: ``max_completion_tokens`` (the Messages API requires one; OpenAI does not).
DEFAULT_MAX_TOKENS = 4096


@attrs.define
class AnthropicOptions:
    default_max_tokens: int = attrs.field(
        default=DEFAULT_MAX_TOKENS,
        validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)],
    )
