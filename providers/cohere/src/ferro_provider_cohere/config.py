"""Cohere-specific settings (config keys next to ``api_key`` and ``base_url``)."""

from __future__ import annotations

import attrs

SAFETY_MODES = ("CONTEXTUAL", "STRICT", "OFF")


@attrs.define
class CohereOptions:
    #: Cohere's ``safety_mode`` for every request (OpenAI has no equivalent field).
    #: None leaves Cohere's default (``CONTEXTUAL``).
    safety_mode: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(SAFETY_MODES)))
