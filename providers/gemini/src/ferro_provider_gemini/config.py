"""Gemini's own config keys (beside the common ``api_key``, ``base_url``, ``timeout`` ...)."""

from __future__ import annotations

from typing import Any

import attrs

from ferro_provider_gemini._embed import task_type_name

SCHEMA_MODES = ("openapi", "json_schema")


@attrs.define
class GeminiOptions:
    #: The API version in the URL: ``{base_url}/{api_version}/models/...``.
    api_version: str = "v1beta"
    #: How tool parameters and ``response_format`` schemas are sent. ``openapi``: translated
    #: to Gemini's OpenAPI-subset ``Schema`` (``parameters`` / ``responseSchema``), refusing
    #: with a 400 what that subset cannot express. ``json_schema``: sent unchanged as JSON
    #: Schema (``parametersJsonSchema`` / ``responseJsonSchema``), for models that accept it.
    schema_mode: str = attrs.field(default="openapi",
                                   validator=attrs.validators.in_(SCHEMA_MODES))
    #: Sent as ``safetySettings`` with every request, e.g.
    #: ``[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]``.
    safety_settings: list[dict[str, Any]] = attrs.Factory(list)
    #: Gemini's ``taskType`` for embeddings (``RETRIEVAL_DOCUMENT``, ``RETRIEVAL_QUERY``,
    #: ``SEMANTIC_SIMILARITY``, ...); a request's own ``task_type`` field overrides it. None
    #: sends no task type: the model's general-purpose embedding, which compares queries
    #: with documents the way OpenAI clients (who embed both alike) expect.
    embedding_task_type: str | None = attrs.field(default=None, converter=task_type_name)
