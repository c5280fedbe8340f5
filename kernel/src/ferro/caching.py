"""Exact-match response caching, shared by every cache backend: what is cacheable, the
cache key, and the stored entry. A backend (``ferro-cache-memory``, ``ferro-cache-redis``)
subclasses :class:`ResponseCache` and implements only :meth:`~ResponseCache.get` and
:meth:`~ResponseCache.store`; the pipeline owns the HTTP side (``Cache-Control``, the
``X-Ferro-Cache`` and ``Age`` reply headers).

The key is a SHA-256 over the operation, the caller's scope, the model asked for and the
canonical request body: every field, in the client's order for lists (message order
matters) and sorted for objects, minus an explicit list of fields that do not change the
answer (:data:`NON_SEMANTIC_FIELDS`). Not cached unless configured: ``n > 1``, an explicit
``temperature`` above ``max_temperature`` (0), ``store: true``, and tool-executing turns
(a request carrying tool results, or an answer that calls tools).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import attrs
import orjson

from ferro.operations import Answer, ChatResponse, CompletionsResponse, EmbeddingsResponse
from ferro.types import RequestContext

__all__ = ["NON_SEMANTIC_FIELDS", "CacheEntry", "CacheOptions", "ResponseCache"]

#: Request fields that never change the answer, left out of the key by default: how the
#: answer is delivered (``stream``, ``stream_options``; a hit replays as a stream when one
#: is asked for), who asked (``user``, ``safety_identifier``), and provider-side
#: bookkeeping (``metadata``, ``store``, ``service_tier``, ``prompt_cache_key``).
NON_SEMANTIC_FIELDS = ("stream", "stream_options", "user", "safety_identifier", "metadata",
                       "store", "service_tier", "prompt_cache_key")

SCOPES = ("key", "tenant", "global")

_ANSWERS: dict[str, type[Answer]] = {"chat": ChatResponse, "completions": CompletionsResponse,
                                     "embeddings": EmbeddingsResponse}
_TOOL_ROLES = frozenset({"tool", "function"})
_ENTRY_VERSION = 1


def _scope(_instance: Any, _attribute: Any, value: str) -> None:
    if value not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)} (got {value!r})")


@attrs.define
class CacheOptions:
    """What every cache backend's ``cache.options`` accepts (a backend's ``Options``
    subclass adds its own)."""

    #: Whose answers may be shared: ``key`` (each API key its own), ``tenant`` (the keys of
    #: one tenant share; a key without a tenant is its own), or ``global``.
    scope: str = attrs.field(default="key", validator=_scope)
    operations: list[str] = attrs.Factory(lambda: ["chat", "completions", "embeddings"])
    #: The highest explicit ``temperature`` still cached (a request without one is cached).
    max_temperature: float = 0.0
    #: Cache requests that carry tool results and answers that call tools.
    cache_tool_turns: bool = False
    #: Request fields left out of the key.
    exclude: list[str] = attrs.Factory(lambda: list(NON_SEMANTIC_FIELDS))
    #: Answers larger than this (bytes of JSON) are not stored.
    max_entry_bytes: int = 1024 * 1024


@attrs.frozen
class CacheEntry:
    """A stored answer: its operation, when it was stored (epoch seconds), its JSON."""

    operation: str
    stored_at: float
    raw: bytes

    def answer(self) -> Answer:
        return _ANSWERS.get(self.operation, Answer)(raw=self.raw)

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.stored_at)

    def to_bytes(self) -> bytes:
        """One line of header, then the answer's JSON (for backends that store bytes)."""
        return orjson.dumps([_ENTRY_VERSION, self.operation, self.stored_at]) + b"\n" + self.raw

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheEntry | None:
        """The entry :meth:`to_bytes` wrote, or None for anything else (a foreign or an
        older entry is a miss, never an error)."""
        head, _, raw = data.partition(b"\n")
        try:
            version, operation, stored_at = orjson.loads(head)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None
        if version != _ENTRY_VERSION or not raw:
            return None
        return cls(operation, stored_at, raw)


class ResponseCache:
    """The base of a cache backend: built as ``cls(options, ttl)`` from the config's
    ``cache`` section. Subclasses implement :meth:`get` and :meth:`store`, and may override
    :meth:`aclose`."""

    Options = CacheOptions

    def __init__(self, options: CacheOptions, ttl: float) -> None:
        self.options = options
        self.ttl = float(ttl)
        self._operations = frozenset(options.operations)
        self._exclude = frozenset(options.exclude)

    # --- the pipeline's calls ---------------------------------------------------------------

    def key(self, ctx: RequestContext) -> str | None:
        """The request's cache key, or None when it is not cacheable."""
        body = ctx.request.body
        if ctx.operation.name not in self._operations or not self._cacheable(body):
            return None
        canonical = orjson.dumps({k: v for k, v in body.items() if k not in self._exclude},
                                 option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256()
        for part in (ctx.operation.name, self._scope_of(ctx), ctx.request.model):
            digest.update(part.encode())
            digest.update(b"\0")
        digest.update(canonical)
        return digest.hexdigest()

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry stored under ``key``, or None."""
        raise NotImplementedError

    async def put(self, key: str, ctx: RequestContext, answer: Answer) -> None:
        """Store a complete, successful answer, unless it may not be cached."""
        raw = answer.to_json()
        if len(raw) > self.options.max_entry_bytes:
            return
        if not self.options.cache_tool_turns and _calls_tools(raw, answer):
            return
        await self.store(key, CacheEntry(ctx.operation.name, time.time(), raw))

    async def store(self, key: str, entry: CacheEntry) -> None:
        """Keep ``entry`` under ``key`` for :attr:`ttl` seconds."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections; called when the gateway that built it closes."""

    # --- policy ----------------------------------------------------------------------------

    def _cacheable(self, body: dict[str, Any]) -> bool:
        n = body.get("n")
        if isinstance(n, int) and n > 1:
            return False
        temperature = body.get("temperature")
        if isinstance(temperature, int | float) and temperature > self.options.max_temperature:
            return False
        if body.get("store") is True:
            return False
        if not self.options.cache_tool_turns:
            for message in body.get("messages") or ():
                if isinstance(message, dict) and message.get("role") in _TOOL_ROLES:
                    return False
        return True

    def _scope_of(self, ctx: RequestContext) -> str:
        scope, identity = self.options.scope, ctx.identity
        if scope == "global" or identity is None:
            return scope
        if scope == "tenant":
            tenant = identity.attributes.get("tenant")
            if tenant:
                return f"tenant:{tenant}"
        return f"key:{identity.key_id}"


def _calls_tools(raw: bytes, answer: Answer) -> bool:
    """Whether an answer (``raw``: its JSON) asks the client to run tools; parsed only when
    its JSON names a tool call at all."""
    if b'"tool_calls"' not in raw and b'"function_call"' not in raw:
        return False
    for choice in answer.body.get("choices") or ():
        message = choice.get("message") or {}
        if message.get("tool_calls") or message.get("function_call"):
            return True
    return False
