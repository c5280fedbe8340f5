"""The operations the gateway serves, and the request, answer and chunk types of each.

An *operation* is what a client asks for, whatever HTTP route it came in on: ``chat``,
``embeddings`` and ``completions`` (legacy text completions) today; images, Anthropic
Messages and pass-through calls later. Each has an :class:`Operation` record naming the
provider methods that serve it, so the pipeline dispatches without knowing the kinds.

Requests, answers and chunks keep the OpenAI wire format as plain dicts: a provider that
speaks OpenAI passes them through untouched (every field, known or not), and a provider
that speaks another dialect translates from and to that one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import orjson

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "OPERATIONS",
    "Answer",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "CompletionsRequest",
    "CompletionsResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "Operation",
    "OperationRequest",
    "RawFrames",
    "Usage",
    "provider_field",
]


@attrs.frozen
class Operation:
    """One kind of request. ``call`` names the provider method for a whole answer,
    ``stream`` the one for a streamed answer (None when the operation never streams)."""

    name: str
    call: str
    stream: str | None = None


CHAT = Operation("chat", call="chat", stream="stream")
EMBEDDINGS = Operation("embeddings", call="embeddings")
COMPLETIONS = Operation("completions", call="completions", stream="stream_completions")

#: Every operation, by name.
OPERATIONS: dict[str, Operation] = {op.name: op for op in (CHAT, EMBEDDINGS, COMPLETIONS)}


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0  # a bool is no count


def _mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` when it is a mapping (most are plain dicts: no ABC check for those)."""
    return value if type(value) is dict or isinstance(value, Mapping) else None


@attrs.define(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    #: Prompt tokens written to a provider's prompt cache (Anthropic bills them apart).
    cache_creation_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        """Read an OpenAI usage object; anything missing or not a count reads as 0."""
        usage = _mapping(usage)
        if usage is None:
            return cls()
        get = usage.get
        prompt = _count(get("prompt_tokens"))
        completion = _count(get("completion_tokens"))
        cached = reasoning = written = 0
        details = get("prompt_tokens_details")
        if details and (details := _mapping(details)) is not None:
            cached = _count(details.get("cached_tokens"))
            written = _count(details.get("cache_creation_tokens"))
        cdetails = get("completion_tokens_details")
        if cdetails and (cdetails := _mapping(cdetails)) is not None:
            reasoning = _count(cdetails.get("reasoning_tokens"))
        return cls(prompt, completion, _count(get("total_tokens")) or prompt + completion,
                   cached, reasoning, written)

    def add(self, other: Usage) -> None:
        """Count ``other`` in too (several upstream calls for one answer)."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cache_creation_tokens += other.cache_creation_tokens

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens or self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens or self.cache_creation_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
            if self.cache_creation_tokens:
                out["prompt_tokens_details"]["cache_creation_tokens"] = self.cache_creation_tokens
        if self.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out


# --- requests ---------------------------------------------------------------------------------


@attrs.define(slots=True)
class OperationRequest:
    """A validated request of one operation. ``body`` is the request object exactly as the
    client sent it (after alias resolution); OpenAI-compatible providers forward it.
    Plugins may change it (``request.body["model"] = ...``) before the strategy runs."""

    operation: ClassVar[Operation]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The model asked for; empty for an operation that names none (a pass-through)."""
        return self.body.get("model") or ""

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        """Whether the client asked for the usage chunk at the end of a stream."""
        opts = self.body.get("stream_options")
        return bool(opts and opts.get("include_usage"))

    @property
    def user(self) -> str | None:
        user = self.body.get("user")
        return user if isinstance(user, str) else None


@attrs.define(slots=True)
class ChatRequest(OperationRequest):
    """An OpenAI chat-completions request."""

    operation: ClassVar[Operation] = CHAT

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]


@attrs.define(slots=True)
class EmbeddingsRequest(OperationRequest):
    """An OpenAI embeddings request: ``input`` is a string, a list of strings, a token
    array or a list of token arrays; ``encoding_format`` is ``float`` (the default) or
    ``base64``."""

    operation: ClassVar[Operation] = EMBEDDINGS

    @property
    def inputs(self) -> list[Any]:
        """The inputs as a list: strings, or token arrays (lists of ints). Validation made
        a list's items all of one kind, so its first says which."""
        value = self.body["input"]
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]  # one text, or one token array
        return list(value)

    @property
    def encoding_format(self) -> str:
        return self.body.get("encoding_format") or "float"

    @property
    def dimensions(self) -> int | None:
        return self.body.get("dimensions")


@attrs.define(slots=True)
class CompletionsRequest(OperationRequest):
    """A legacy OpenAI completions request (``prompt`` instead of ``messages``)."""

    operation: ClassVar[Operation] = COMPLETIONS

    @property
    def prompts(self) -> list[Any]:
        """The prompts as a list: strings, or token arrays."""
        value = self.body.get("prompt", "")
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]  # one prompt, or one token array
        return list(value)


# --- answers ----------------------------------------------------------------------------------


class Answer:
    """A whole (non-streamed) answer in OpenAI's shape. ``body["provider"]`` names who
    answered.

    A pass-through provider may hand over the upstream's bytes instead (:meth:`relayed`):
    they are parsed only when something reads :attr:`body` (a plugin, the cache), and sent
    as they came otherwise. Reading ``body`` parses once; edits to it are what is sent.
    """

    __slots__ = ("_body", "_raw")

    def __init__(self, body: dict[str, Any] | None = None, *, raw: bytes | None = None) -> None:
        if body is None and raw is None:
            raise TypeError("an answer needs a body or its raw JSON")
        self._body = body
        self._raw = raw

    @classmethod
    def relayed(cls, raw: bytes, provider_field: bytes) -> Answer:
        """An upstream's JSON object as it came, with ``provider_field`` (``,"provider":
        "<name>"``, see :func:`provider_field`) added before its closing brace, without
        parsing it (the caller checks the upstream named no provider of its own)."""
        end = raw.rfind(b"}")
        return cls(raw=raw[:end] + provider_field + raw[end:])

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = orjson.loads(self._raw)  # type: ignore[arg-type]
            self._raw = None
        return self._body

    @property
    def usage(self) -> Usage:
        if self._body is None:
            return Usage.from_openai(_usage_in(self._raw))  # type: ignore[arg-type]
        return Usage.from_openai(self._body.get("usage"))

    @property
    def provider(self) -> str:
        return self.body.get("provider", "")

    def to_json(self) -> bytes:
        if self._raw is not None:
            return self._raw
        return orjson.dumps(self._body)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._body if self._body is not None else self._raw!r})"


def provider_field(name: str) -> bytes:
    """The bytes :meth:`Answer.relayed` adds to name who answered."""
    return b',"provider":' + orjson.dumps(name)


#: Answers up to this size are parsed whole to read their usage: below it that is quicker
#: than finding the object in the bytes (1.5 against 2.8 us for a 700-byte answer).
PARSE_WHOLE_BELOW = 4096


def _usage_in(raw: bytes) -> Any:
    """The top-level ``usage`` object of an answer's JSON; in a large answer, read without
    parsing the rest (a quote inside a JSON string is escaped, so ``"usage":{`` only starts
    a key)."""
    if len(raw) < PARSE_WHOLE_BELOW:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return data.get("usage") if isinstance(data, dict) else None
    at = raw.rfind(b'"usage":')
    if at < 0:
        return None
    start = raw.find(b"{", at)
    if start < 0 or raw[at + 8:start].strip():
        return None
    end = start
    while True:  # the first closing brace that balances the opening ones
        end = raw.find(b"}", end + 1)
        if end < 0:
            return None
        if raw.count(b"{", start, end) == raw.count(b"}", start, end + 1):
            break
    try:
        return orjson.loads(raw[start:end + 1])
    except orjson.JSONDecodeError:
        return None


class ChatResponse(Answer):
    """An OpenAI ``chat.completion`` object."""

    __slots__ = ()


class EmbeddingsResponse(Answer):
    """An OpenAI embeddings list: ``{"object": "list", "data": [{"object": "embedding",
    "index", "embedding"}], "model", "usage"}``."""

    __slots__ = ()


class CompletionsResponse(Answer):
    """An OpenAI ``text_completion`` object."""

    __slots__ = ()


# --- stream pieces ----------------------------------------------------------------------------


@attrs.define(slots=True)
class ChatChunk:
    """One stream chunk (``chat.completion.chunk``, or ``text_completion`` for legacy
    completions).

    A translating provider builds ``data`` (a dict). A pass-through provider hands over
    ``raw``, the chunk's JSON bytes as the upstream sent them, and the gateway parses them
    only when it has to (see :meth:`as_dict`). ``more`` is a hint that another chunk follows
    at once (it arrived in the same read), so the gateway may send both in one write.
    """

    data: dict[str, Any] | None = None
    raw: bytes | None = None
    more: bool = False

    def to_json(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return orjson.dumps(self.data)

    def as_dict(self) -> dict[str, Any]:
        """The chunk as a dict, parsed once. Edits to it are what the gateway then sends."""
        if self.data is None:
            self.data = orjson.loads(self.raw)  # type: ignore[arg-type]
            self.raw = None
        return self.data

    def carries_usage(self) -> bool:
        """Cheap test for a usage object, without parsing a pass-through chunk."""
        if self.data is not None:
            return bool(self.data.get("usage"))
        raw = self.raw or b""
        return b'"usage"' in raw and b'"usage":null' not in raw and b'"usage": null' not in raw


@attrs.define(slots=True)
class RawFrames:
    """Complete SSE ``data:`` frames of OpenAI chunks, relayed byte for byte: what a
    pass-through provider yields for a stretch of stream that needs no attention (no usage,
    no error, no end). The gateway parses them only when a plugin needs the chunks."""

    frames: bytes
    #: As for ChatChunk: more of the same read follows (parsed chunks), send them together.
    more: bool = False

    def chunks(self) -> list[ChatChunk]:
        from ferro.sse import split_events

        events, _ = split_events(self.frames)
        return [ChatChunk(raw=data) for _event, data in events if data]
