"""``BaseProvider``: what every provider shares, so provider packages hold only translation.

It resolves settings (config file, then environment), maps model names, answers
``supports_model``, caches discovered models, and does the HTTP: through the gateway's own
client (:mod:`ferro.http_client`, set as ``http`` by the gateway) or, for a provider built
without it, through its aiohttp session; the provider's timeout; and upstream failures
turned into :class:`~ferro.errors.UpstreamError` with the upstream status, a retryable flag
and ``Retry-After`` passed on. What an upstream sends is bounded by the config's
``limits``: a whole answer by ``max_response_bytes`` (refused at its Content-Length, or as
soon as the bytes read pass it, never buffered past it), a stream's events by
``max_frame_bytes`` and the whole stream by ``max_stream_bytes``. Each provider's
credentials are learned by :data:`ferro.redaction.SECRETS` when it is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, NoReturn

import aiohttp
import attrs
import orjson
from aiohttp import hdrs

from ferro.completions import completions_via_chat, stream_completions_via_chat
from ferro.config import ConfigSource, LimitsConfig, ProviderSettings, build_options
from ferro.errors import GatewayError, UpstreamError, UpstreamTimeoutError, transport_error
from ferro.http_client import ConnectTimeout, HeadTimeout, HTTPClient, Response
from ferro.operations import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    CompletionsResponse,
    RawFrames,
)
from ferro.redaction import SECRETS
from ferro.resilience import within
from ferro.sse import Event, FrameReader, StreamLimitError, iter_lines, iter_sse
from ferro.types import ModelInfo

__all__ = ["CALL", "BaseProvider", "CallScope", "NoOptions", "relay_headers"]

log = logging.getLogger("ferro.provider")

_CONTEXT_MARKERS = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
)


_DEFAULT_LIMITS = LimitsConfig()


@attrs.define(slots=True)
class CallScope:
    """One upstream call as the attempt helper sets it up: where the response headers
    worth relaying go, the target's time limits (seconds, None: the provider's own
    ``timeout``) for connecting, for the first byte of the answer and for all of it, the
    config's size limits, and headers the request carries besides the provider's own.
    ``sent`` turns true when the HTTP helpers send the request upstream: a failure before
    it is a failure to translate the request."""

    headers: dict[str, str]
    connect: float | None = None
    first_byte: float | None = None
    total: float | None = None
    limits: LimitsConfig = _DEFAULT_LIMITS
    sent: bool = False
    #: Headers every upstream request of the call carries (the trace context).
    outgoing: dict[str, str] = attrs.Factory(dict)


#: The call in progress (set per attempt by :mod:`ferro.attempt`; None outside one).
CALL: ContextVar[CallScope | None] = ContextVar("ferro_call", default=None)
_RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
#: Upstream request-id headers; one named like the gateway's own is relayed renamed.
_REQUEST_IDS = {"x-request-id": "x-upstream-request-id", "request-id": "request-id",
                "apim-request-id": "apim-request-id", "cf-ray": "cf-ray",
                "openai-processing-ms": "openai-processing-ms"}


def relay_headers(headers: Mapping[str, str]) -> None:
    """Keep the rate-limit and request-id headers of an upstream answer for the client."""
    scope = CALL.get()
    if scope is None:
        return
    sink = scope.headers
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(_RELAYED_PREFIXES):
            sink[lowered] = value
        elif lowered in _REQUEST_IDS:
            sink[_REQUEST_IDS[lowered]] = value


@attrs.define
class NoOptions:
    """Options of a provider that takes no provider-specific settings."""


class BaseProvider:
    """Base class for providers. Subclasses set the class attributes and implement
    :meth:`chat` and :meth:`stream` (and :meth:`discover_models` where the provider has a
    list-models API). Legacy completions are served through chat unless a subclass has
    the upstream's own; a provider that serves embeddings adds ``"embeddings"`` to
    ``operations`` and implements :meth:`embeddings`."""

    #: The operations served (see :mod:`ferro.operations`).
    operations: ClassVar[frozenset[str]] = frozenset({"chat", "completions"})
    #: Most inputs one upstream embeddings call takes; larger requests are split.
    max_embedding_batch: ClassVar[int] = 2048

    #: Env var with the API key; None when the provider takes no key.
    env_api_key: ClassVar[str | None] = None
    #: Env var with the base URL, and the default base URL.
    env_base_url: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""
    #: Models listed when the provider's list-models API cannot be reached.
    default_models: ClassVar[tuple[str, ...]] = ()
    #: Model-name prefixes this provider serves; None means any model.
    model_prefixes: ClassVar[tuple[str, ...] | None] = None
    #: Serve any model when the base URL is not the default (a compatible server whose
    #: model names cannot be guessed), unless ``models`` lists them.
    any_model_on_custom_base_url: ClassVar[bool] = True
    #: Upstream statuses OpenAI clients do not know -> the standard status meaning the same.
    status_map: ClassVar[Mapping[int, int]] = {529: 503}
    #: attrs class for provider-specific config keys (see ``ProviderSettings.options``).
    Options: ClassVar[type] = NoOptions
    #: How long discovered models are trusted, and how long discovery may take, in seconds.
    models_ttl: ClassVar[float] = 600.0
    discovery_timeout: ClassVar[float] = 10.0
    #: The gateway's upstream client, which the gateway sets; None: calls go through
    #: ``session``.
    http: HTTPClient | None = None

    def __init__(
        self, name: str, settings: ProviderSettings, session: aiohttp.ClientSession | None
    ) -> None:
        self.name = name
        self.settings = settings
        self.session = session
        self.api_key = settings.api_key or ""
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self.options: Any = settings.options
        SECRETS.learn_provider(settings.api_key, settings.headers, settings.base_url)
        self._discovered: list[ModelInfo] | None = None
        self._discovered_at = 0.0
        self._discovery_lock = asyncio.Lock()
        self._refreshing: asyncio.Future[None] | None = None

    # --- settings --------------------------------------------------------------------------

    @classmethod
    def resolve_settings(
        cls, name: str, settings: ProviderSettings, env: Mapping[str, str], source: ConfigSource
    ) -> ProviderSettings | None:
        """Fill the key and base URL from the environment when the config leaves them out,
        and structure provider-specific ``options``. None when a required key is missing."""
        api_key = settings.api_key or (env.get(cls.env_api_key) if cls.env_api_key else None)
        if cls.env_api_key and not api_key:
            return None
        base_url = settings.base_url or (env.get(cls.env_base_url) if cls.env_base_url else None)
        options = cls.options_from(settings.options, env, source, ("providers", name))
        return attrs.evolve(settings, api_key=api_key, base_url=base_url, options=options)

    @classmethod
    def options_from(
        cls, options: Any, env: Mapping[str, str], source: ConfigSource, at: tuple[Any, ...]
    ) -> Any:
        """Structure the provider-specific keys; override to read them from env too."""
        return build_options(cls, options or {}, source, at)

    @classmethod
    def configured_in(cls, env: Mapping[str, str]) -> bool:
        """Whether the environment alone configures this provider (for the no-config start)."""
        return bool(cls.env_api_key and env.get(cls.env_api_key))

    # --- models ----------------------------------------------------------------------------

    def upstream_model(self, model: str) -> str:
        return self.settings.model_map.get(model, model)

    def supports_model(self, model: str) -> bool:
        if model in self.settings.model_map:
            return True
        if self.settings.models:
            return model in self.settings.models
        if self.model_prefixes is None:
            return True
        if self.any_model_on_custom_base_url and self.base_url != self.default_base_url:
            return True
        return model.startswith(self.model_prefixes)

    def static_models(self) -> list[ModelInfo]:
        names = list(self.settings.models or self.default_models)
        names += [m for m in self.settings.model_map if m not in names]
        return [ModelInfo(m, self.name) for m in names]

    async def discover_models(self) -> list[ModelInfo] | None:
        """Ask the provider's list-models API; None when it has none."""
        return None

    async def list_models(self) -> list[ModelInfo]:
        """What the provider really serves: the configured ``models`` when given, else the
        models its list-models API reports (cached for ``models_ttl``), else the defaults.
        ``model_map`` names are listed too."""
        static = self.static_models()
        if self.settings.models:
            return static
        if self._discovered is None:
            async with self._discovery_lock:  # the first call waits (bounded)
                if self._discovered is None:
                    await self._refresh_models()
        elif time.monotonic() - self._discovered_at > self.models_ttl and (
                self._refreshing is None or self._refreshing.done()):
            # stale while revalidating: answer now, refresh in the background
            self._refreshing = asyncio.ensure_future(self._refresh_models())
        if not self._discovered:
            return static
        seen = {m.id for m in self._discovered}
        mapped = [ModelInfo(m, self.name) for m in self.settings.model_map if m not in seen]
        return self._discovered + mapped

    async def _refresh_models(self) -> None:
        try:
            self._discovered = await asyncio.wait_for(
                self.discover_models(), self.discovery_timeout) or []
        except (GatewayError, TimeoutError) as exc:
            log.info("model discovery for %s failed: %s", self.name,
                     getattr(exc, "message", "timed out"))
            self._discovered = self._discovered or []
        self._discovered_at = time.monotonic()

    async def check_health(self) -> None:
        """A cheap deep check: list the models. Raises a GatewayError when unhealthy."""
        await self.discover_models()

    # --- calls (subclasses implement) ------------------------------------------------------

    async def chat(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk | RawFrames]:
        raise NotImplementedError

    async def completions(self, request: CompletionsRequest) -> CompletionsResponse:
        """Legacy completions, through :meth:`chat` (see :mod:`ferro.completions`)."""
        return await completions_via_chat(self, request)

    def stream_completions(self, request: CompletionsRequest
                           ) -> AsyncIterator[ChatChunk | RawFrames]:
        return stream_completions_via_chat(self, request)

    async def aclose(self) -> None:
        """Stop background work (a model refresh) when the gateway shuts down."""
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()

    # --- HTTP helpers ----------------------------------------------------------------------

    def call_limits(self, stream: bool) -> tuple[float | None, float | None, float | None]:
        """This call's time limits in seconds (None: none): to connect, for the whole
        exchange and for the response headers. The provider's own ``timeout`` unless the
        target sets limits (see :class:`CallScope`). A whole answer must arrive within the
        timeout; a stream has no total limit, its reads are watched for stalls instead."""
        scope = CALL.get()
        own = self.settings.timeout or None
        if scope is None or scope.connect is scope.first_byte is scope.total is None:
            return own, (None if stream else own), (own if stream else None)
        connect = scope.connect or own
        if stream:
            return connect, None, scope.first_byte or own
        return connect, scope.total or own, scope.first_byte

    def send(self, method: str, url: str, data: bytes | None, *, stream: bool,
             headers: Mapping[str, str] | None = None,
             params: Mapping[str, str] | None = None) -> Awaitable[Any]:
        """Send a request within the call's limits; the response (a
        :class:`ferro.http_client.Response`, or aiohttp's through ``session``) once its
        headers have come. A failure is the transport's (a ``TimeoutError``, an ``OSError``,
        an aiohttp error) or the no-response error: :meth:`transport_error` turns each into
        the call's UpstreamError. The HTTP helpers below are built on it."""
        connect, total, first_byte = self.call_limits(stream)
        scope = CALL.get()
        http = self.http
        if http is not None and http.enabled:  # its HeadTimeout is this call's no_response
            return http.request(
                method, url, body=data, headers=headers, params=params,
                call_headers=scope.outgoing if scope is not None else None,
                connect_timeout=connect, timeout=total, head_timeout=first_byte)
        if scope is not None and scope.outgoing:
            headers = {**headers, **scope.outgoing} if headers else scope.outgoing
        sent = self.session.request(  # type: ignore[union-attr]
            method, url, data=data, headers=headers, params=params,
            timeout=aiohttp.ClientTimeout(total=total, sock_connect=connect))
        return within(first_byte, sent, lambda: self.no_response(first_byte))

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a request and return its decoded JSON, or raise an UpstreamError."""
        return self.decode_json(await self.request_bytes(method, url, body=body,
                                                         headers=headers, params=params))

    async def request_bytes(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send a request and return the answer's bytes, or raise an UpstreamError."""
        data = orjson.dumps(body) if body is not None else None
        limit = _sending().max_response_bytes
        try:
            resp = await self.send(method, url, data, stream=False, headers=headers,
                                   params=params)
            try:
                raw = await self.read_body(resp, limit)
                if resp.status >= 400:
                    raise self.upstream_error(resp.status, raw, resp.headers)
                relay_headers(resp.headers)
            finally:
                resp.release()
        except GatewayError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.transport_error(exc) from exc
        return raw

    async def read_body(self, resp: Any, limit: int) -> bytes:
        """The whole body of ``resp``, or a 502 as soon as its Content-Length or the bytes
        read pass ``limit`` (the connection is closed: the rest is never read)."""
        length = resp.content_length
        if length is not None and length > limit:
            self._too_large(resp, limit)
        if length is not None and hdrs.CONTENT_ENCODING not in resp.headers:
            return await resp.read()  # exactly Content-Length bytes
        parts: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():  # decompressed: count what it makes
            size += len(chunk)
            if size > limit:
                self._too_large(resp, limit)
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self, resp: Any, limit: int) -> NoReturn:
        resp.close()
        raise UpstreamError(
            f"{self.name} answered with more than limits.max_response_bytes ({limit} bytes)",
            status=502, provider=self.name, code="upstream_response_too_large",
            retryable=False)

    def no_response(self, limit: float) -> UpstreamTimeoutError:
        """The error for response headers that did not come within ``limit`` seconds."""
        return UpstreamTimeoutError(f"{self.name}: no response within {limit:g}s",
                                    provider=self.name)

    @contextlib.asynccontextmanager
    async def open_stream(
        self,
        url: str,
        *,
        body: Any,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Any]:
        """POST ``body`` and yield the streaming response once its status is OK (see
        :meth:`send`). Read errors while streaming become UpstreamErrors too. The timeout
        bounds the wait for the response headers, and then any stall: a stream that sends
        nothing for about that long (between one and two timeouts) is cut and reported as a
        timeout.

        A stream read to its terminal event gives its connection back to the pool: when the
        upstream's end of the body has not arrived yet, it is awaited in the background,
        so the next call does not open (and TLS-handshake) a new connection."""
        limit = self.settings.timeout or None
        data = orjson.dumps(body)
        max_body = _sending().max_response_bytes
        try:
            resp = await self.send("POST", url, data, stream=True, headers=headers,
                                   params=params)
        except GatewayError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.transport_error(exc) from exc
        watch = _StallWatch(resp, limit) if limit else None
        finished = False
        try:
            if resp.status >= 400:
                raise self.upstream_error(resp.status, await self.read_body(resp, max_body),
                                          resp.headers)
            relay_headers(resp.headers)
            yield resp
            finished = True
        except GatewayError:
            raise
        except StreamLimitError as exc:
            raise UpstreamError(f"{self.name}: {exc}", status=502, provider=self.name,
                                code=exc.code, retryable=False) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            stalled = watch is not None and watch.fired
            raise self.transport_error(TimeoutError() if stalled else exc) from exc
        finally:
            if watch is not None:
                watch.cancel()
            if finished and not resp.content.at_eof():
                if isinstance(resp, Response):
                    resp.release_when_done(limit or _DRAIN_SECONDS)
                else:
                    _release_at_end(resp, limit or _DRAIN_SECONDS)
            else:
                resp.release()

    @staticmethod
    def frame_reader(separator: bytes = b"\n\n") -> FrameReader:
        """A reader of a stream's frames (``separator``: a blank line for SSE, a newline
        for NDJSON) within the current call's limits. Make it when the stream is opened:
        the call's limits are known until its first chunk."""
        limits = _call_limits()
        return FrameReader(limits.max_frame_bytes, limits.max_stream_bytes, separator)

    def sse_events(self, resp: Any) -> AsyncIterator[Event]:
        """``(event, data)`` for each event of a streamed SSE reply (see
        :func:`ferro.sse.iter_sse`), within the call's limits."""
        return iter_sse(resp.content, self.frame_reader())

    async def iter_events(self, resp: Any) -> AsyncIterator[Any]:
        """The decoded JSON events of a streamed reply: SSE when it is ``text/event-stream``,
        else newline-delimited JSON. Bad JSON is a 502 UpstreamError."""
        if resp.content_type == "text/event-stream":
            async for _event, data in self.sse_events(resp):
                if data and data != b"[DONE]":
                    yield self.decode_json(data)
            return
        async for line in iter_lines(resp.content, self.frame_reader(b"\n")):
            yield self.decode_json(line)

    def decode_json(self, raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            snippet = raw[:200].decode("utf-8", "replace")
            raise UpstreamError(
                f"{self.name} returned invalid JSON: {snippet!r}",
                status=502, provider=self.name, code="invalid_upstream_response", retryable=True,
            ) from None

    def transport_error(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, HeadTimeout):
            return self.no_response(exc.limit)
        if isinstance(exc, ConnectTimeout | aiohttp.ConnectionTimeoutError):
            scope = CALL.get()
            limit = (scope.connect if scope is not None else None) or self.settings.timeout
            return UpstreamTimeoutError(f"{self.name}: could not connect within {limit:g}s",
                                        provider=self.name)
        return transport_error(self.name, exc, self.settings.timeout)

    def error_message(self, payload: Any) -> str | None:
        """The human message inside an upstream error body. Override for odd shapes."""
        if isinstance(payload, Mapping):
            err = payload.get("error", payload)
            if isinstance(err, Mapping):
                msg = err.get("message") or err.get("detail")
                if isinstance(msg, str):
                    return msg
            if isinstance(err, str):
                return err
            for key in ("message", "detail"):
                if isinstance(payload.get(key), str):
                    return payload[key]
        if isinstance(payload, list) and payload:
            return self.error_message(payload[0])
        return None

    def upstream_error(
        self, status: int, raw: bytes, headers: Mapping[str, str] | None = None
    ) -> UpstreamError:
        """Turn an upstream error reply into an UpstreamError with the right status."""
        original = status
        status = self.status_map.get(status, status)
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        message = self.error_message(payload) or raw[:300].decode("utf-8", "replace") or (
            f"HTTP {status}")
        extra: dict[str, Any] = {}
        if headers is not None and headers.get("Retry-After"):
            extra["headers"] = {"Retry-After": headers["Retry-After"]}
        lowered = message.lower()
        if status in (400, 413, 422) and any(m in lowered for m in _CONTEXT_MARKERS):
            extra["code"] = "context_length_exceeded"
            status = 400
        if original != status == 503:  # a provider's own "overloaded" (Anthropic 529, Groq 498)
            extra["code"] = "upstream_overloaded"
            extra["retryable"] = True
        return UpstreamError(f"{self.name}: {message}", status=status, provider=self.name, **extra)

    def truncated(self, what: str) -> UpstreamError:
        """The error for a stream that ended before its terminal event."""
        return UpstreamError(
            f"{self.name} stream ended before {what}: the answer is incomplete",
            status=502, provider=self.name, code="stream_truncated", retryable=True,
        )

    @staticmethod
    def response_chunk(response_id: str, model: str, created: int, delta: dict[str, Any],
                       finish_reason: str | None = None, index: int = 0) -> ChatChunk:
        """A ``chat.completion.chunk`` for translating providers."""
        return ChatChunk({
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
        })

    @staticmethod
    def usage_chunk(response_id: str, model: str, created: int, usage: dict[str, Any]) -> ChatChunk:
        """The final usage-only chunk (``choices: []``), as OpenAI sends it."""
        return ChatChunk({
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        })


def _call_limits() -> LimitsConfig:
    """The current call's size limits (the defaults outside a call)."""
    scope = CALL.get()
    return _DEFAULT_LIMITS if scope is None else scope.limits


def _sending() -> LimitsConfig:
    """:func:`_call_limits`, noting that the current call's request is going upstream now."""
    scope = CALL.get()
    if scope is None:
        return _DEFAULT_LIMITS
    scope.sent = True
    return scope.limits


#: How long a finished stream's connection waits for the end of the upstream's body.
_DRAIN_SECONDS = 10.0
_draining: set[asyncio.Task[None]] = set()


def _release_at_end(resp: aiohttp.ClientResponse, seconds: float) -> None:
    """Give ``resp``'s connection back to the pool once the rest of its body (usually just
    the chunked encoding's last chunk) has arrived; close it if that takes too long."""

    async def drain() -> None:
        try:
            async with asyncio.timeout(seconds):
                await resp.read()
        except Exception:  # too slow, or the connection went: it is not reused
            resp.close()
        else:
            resp.release()

    task = asyncio.ensure_future(drain())
    _draining.add(task)
    task.add_done_callback(_draining.discard)


class _StallWatch:
    """Cuts a streaming response that has received nothing for ``seconds``. It looks at the
    byte count once per period, so a busy stream costs nothing per read."""

    __slots__ = ("fired", "handle", "resp", "seconds", "seen")

    def __init__(self, resp: Any, seconds: float) -> None:
        self.resp = resp
        self.seconds = seconds
        self.seen = resp.content.total_bytes
        self.fired = False
        self.handle = asyncio.get_running_loop().call_later(seconds, self._check)

    def _check(self) -> None:
        total = self.resp.content.total_bytes
        if total == self.seen:
            self.fired = True
            self.resp.close()
            return
        self.seen = total
        self.handle = asyncio.get_running_loop().call_later(self.seconds, self._check)

    def cancel(self) -> None:
        self.handle.cancel()
