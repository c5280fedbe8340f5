"""What a span says about a routing target, found by the target's name in the config being
served: which GenAI provider it is, and the upstream's host and port.

An exchange names its targets only; their provider types and base URLs are in the gateway's
targets. They are read once per config (a reload brings a new list of targets), so a span
costs a dictionary look-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
from ferro import Target

__all__ = ["PROVIDER_NAMES", "TargetInfo", "Targets", "provider_name"]

#: ``gen_ai.provider.name`` for the provider types whose well-known value differs from the
#: type's own name (``openai``, ``anthropic``, ``cohere``, ``deepseek`` and ``groq`` are the
#: same); any other type is named as it is.
PROVIDER_NAMES = {"azure-openai": "azure.ai.openai", "gemini": "gcp.gemini",
                  "mistral": "mistral_ai"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def provider_name(kind: str) -> str:
    """The ``gen_ai.provider.name`` of a provider type."""
    return PROVIDER_NAMES.get(kind, kind)


@attrs.frozen
class TargetInfo:
    target: Target
    #: The attributes every span of a call to this target carries.
    attributes: dict[str, Any]

    @classmethod
    def of(cls, target: Target) -> TargetInfo:
        attributes: dict[str, Any] = {"gen_ai.provider.name": provider_name(target.kind)}
        url = urlsplit(getattr(target.provider, "base_url", "") or "")
        if url.hostname:
            attributes["server.address"] = url.hostname
            port = url.port or _DEFAULT_PORTS.get(url.scheme)
            if port:
                attributes["server.port"] = port
        return cls(target, attributes)


class Targets:
    """The targets of the config being served, by name; ``current`` gives their list."""

    def __init__(self, current: Callable[[], Sequence[Target]]) -> None:
        self._current = current
        self._seen: Sequence[Target] | None = None
        self._by_name: dict[str, TargetInfo] = {}

    def get(self, name: str) -> TargetInfo | None:
        targets = self._current()
        if targets is not self._seen:
            self._by_name = {t.name: TargetInfo.of(t) for t in targets}
            self._seen = targets
        return self._by_name.get(name)
