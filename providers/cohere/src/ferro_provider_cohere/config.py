"""Cohere-specific settings (config keys next to ``api_key`` and ``base_url``)."""

from __future__ import annotations

import attrs

from ferro_provider_cohere._embed import INPUT_TYPES, TRUNCATE_MODES

SAFETY_MODES = ("CONTEXTUAL", "STRICT", "OFF")


@attrs.define
class CohereOptions:
    #: Cohere's ``safety_mode`` for every request (OpenAI has no equivalent field).
    #: None leaves Cohere's default (``CONTEXTUAL``).
    safety_mode: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(SAFETY_MODES)))
    #: Cohere's ``input_type`` for embeddings, which Cohere's v3 and later models require;
    #: a request's own ``input_type`` field overrides it. ``search_document`` suits text
    #: stored for retrieval; send ``input_type: search_query`` with the queries.
    embedding_input_type: str = attrs.field(default="search_document",
                                            validator=attrs.validators.in_(INPUT_TYPES))
    #: Cohere's ``truncate`` for embeddings. ``NONE`` (an input over the model's limit is a
    #: 400, as with OpenAI) or ``END`` / ``START`` (Cohere cuts the input to fit).
    embedding_truncate: str = attrs.field(default="NONE",
                                          validator=attrs.validators.in_(TRUNCATE_MODES))
