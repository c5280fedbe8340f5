"""Groq's own config keys (beside the common ``api_key``, ``base_url``, ``timeout`` ...)."""

from __future__ import annotations

import attrs


@attrs.define
class GroqOptions:
    #: Models, beyond :attr:`GroqProvider.json_schema_models`, that take
    #: ``response_format: json_schema`` themselves (Groq adds them over time); for every
    #: other model the gateway emulates it with a forced tool.
    json_schema_models: list[str] = attrs.Factory(list)
