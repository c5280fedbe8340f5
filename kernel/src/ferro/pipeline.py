"""The request lifecycle, top to bottom, once, for every operation and every route.

:meth:`Pipeline.serve` takes an HTTP request and the :class:`Codec` of its route, and runs:

1. authenticate the caller (401), read the body (413), parse it into an operation (400),
   resolve the model alias;
2. ``before_request`` plugins, in config order (a rejection is its 4xx; a plugin may answer);
3. cache lookup (a hit is answered, as a stream too when one was asked for);
4. route check (the model and the operation are served, else 400), then the strategy,
   which tries targets through :func:`ferro.attempt.attempt_for` (breaker, retries,
   timeout);
5. for a whole answer: ``after_request`` plugins (which may still refuse it), cache store,
   the JSON reply. For a stream: each chunk through the ``on_chunk`` plugins (only when
   some are configured; otherwise raw frames are relayed unparsed), then, once it has
   ended, ``after_request`` on the assembled answer and cache store;
6. ``on_error`` plugins on any failure after parsing;
7. exactly one :class:`~ferro.types.Exchange` per request, whatever happened (answered,
   failed, rejected, invalid, unauthenticated, too large, cancelled by the client), handed
   to the ``exchange_completed`` listeners after the reply is written.

The codec knows its wire format only; the pipeline knows no wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from ferro.attempt import ChunkStream, attempt_for
from ferro.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    RequestTooLargeError,
)
from ferro.gateway import Gateway
from ferro.operations import Answer, ChatChunk, Operation, OperationRequest, RawFrames, Usage
from ferro.streaming import StreamAssembler, replay
from ferro.tracing import TraceContext
from ferro.types import Cache, Exchange, Identity, RequestContext
from ferro.validation import check_limits

if TYPE_CHECKING:
    from ferro.events import Events
    from ferro.keys import KeyRing

__all__ = ["CACHE_HEADER", "Codec", "Pipeline", "client_closed", "request_id", "routable_header"]

log = logging.getLogger("ferro.pipeline")

REQUEST_ID = web.RequestKey("ferro_request_id", str)


class _Ids:
    """New request ids: 32 hex digits, a random per-process prefix and a counter (unique
    without a system call per request; a forked worker draws its own prefix)."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.reseed)


def request_id(http: web.Request) -> str:
    """The request's id: the client's ``X-Request-ID`` when it is a sane one, else a new
    one; the same for the request's whole life (the response echoes it)."""
    rid = http.get(REQUEST_ID)
    if rid is None:
        rid = http.headers.get("X-Request-ID")
        if not rid or len(rid) > 128 or not rid.isprintable():
            rid = _ids.new()
        http[REQUEST_ID] = rid
    return rid


class StreamEncoder(Protocol):
    """One stream's wire format (it may keep state: named events, block indexes)."""

    #: Whether OpenAI SSE frames from a pass-through provider can be written as they are.
    relays_raw: bool
    headers: Mapping[str, str]

    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def done(self) -> bytes:
        """What ends a stream that went well."""
        ...

    def error(self, exc: GatewayError) -> bytes:
        """What ends a stream that failed after its first byte."""
        ...


class Codec(Protocol):
    """An HTTP route's wire format: body -> operation request, outcome -> HTTP."""

    operation: Operation

    def parse(self, raw: bytes) -> OperationRequest: ...

    def answer(self, answer: Answer, headers: Mapping[str, str]) -> web.Response:
        """The reply for a whole answer (``headers``: upstream headers to relay)."""
        ...

    def error(self, exc: GatewayError) -> web.Response: ...

    def stream(self, ctx: RequestContext) -> StreamEncoder: ...


def client_closed() -> GatewayError:
    return InvalidRequestError("the client closed the connection", code="client_closed",
                               status=499)


class _Outcome:
    """What the exchange will record, filled in as the request goes."""

    __slots__ = ("error", "status", "ttfb", "usage")

    def __init__(self) -> None:
        self.status = 200
        self.error: GatewayError | None = None
        self.ttfb: float | None = None
        self.usage: Usage | None = None

    def fail(self, error: GatewayError) -> None:
        self.status = error.status
        self.error = error


#: What puts the request id, ``Server`` and CORS headers on a response before it is sent.
Stamp = Callable[[web.Request, web.StreamResponse], None]


class Pipeline:
    """The gateway currently serving, and the one path every request takes through it."""

    def __init__(self, gateway: Gateway, events: Events) -> None:
        self.gateway = gateway
        self.events = events
        gateway.watch_breakers(events.breaker_changed)
        #: The error every request still in flight was ended with (see :meth:`stop`).
        self.stopped: GatewayError | None = None
        #: The stored API keys, once storage is open (None: no key store).
        self.keys: KeyRing | None = None
        #: What stamps each reply before it is written (the request id, ``Server``, CORS).
        self.stamp: Stamp = _unstamped
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def authenticate(self, authorization: str | None) -> Identity | None:
        """The caller: a key of the config's ``server.api_keys`` or a stored key, or None
        when none is needed and none was sent. A key is needed once the config lists keys,
        or a key is stored and ``server.open_inference`` is off; a key that is sent is
        checked whenever keys exist. Raises AuthenticationError (401)."""
        gateway, ring = self.gateway, self.keys
        stored = ring is not None and ring.exists
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            if gateway.requires_key or (stored and not gateway.config.server.open_inference):
                raise AuthenticationError(
                    "missing API key: send it as 'Authorization: Bearer <key>'")
            return None
        identity = gateway.config_identity(token)
        if identity is None and ring is not None:
            identity = await ring.identify(token)
        if identity is None and (gateway.requires_key or stored):
            raise AuthenticationError("invalid API key")
        return identity

    def swap(self, gateway: Gateway) -> Gateway:
        """Serve new requests on ``gateway``; the old one finishes what it has in flight,
        then closes. Returns the old one."""
        gateway.watch_breakers(self.events.breaker_changed)
        old, self.gateway = self.gateway, gateway
        old.retire()
        return old

    def stop(self, error: GatewayError) -> None:
        """End every request in flight now, at the end of a shutdown drain: each is answered
        ``error``, and a stream that has begun ends with it as its error event."""
        self.stopped = error
        for task in self._in_flight:
            task.cancel()

    def _stopped_here(self) -> GatewayError | None:
        """In a request that was just cancelled: the error to end it with when :meth:`stop`
        did it (the cancellation is then spent), or None when its client went away."""
        if self.stopped is None:
            return None
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return self.stopped

    async def serve(self, http: web.Request, codec: Codec,
                    check: Callable[[web.Request], None] | None = None) -> web.StreamResponse:
        """Answer ``http`` with ``codec``; ``check`` refuses it first, if it must be (the
        edge's ``Host`` and ``Content-Type`` checks), as an exchange like any other."""
        gateway = self.gateway  # requests in flight finish on the config they started on
        gateway.enter()
        task = asyncio.current_task()
        self._in_flight.add(task)  # type: ignore[arg-type]
        started, t0 = time.time(), time.perf_counter()
        out = _Outcome()
        ctx: RequestContext | None = None
        identity = None
        try:
            if check is not None:
                check(http)
            identity = await self.authenticate(http.headers.get("Authorization"))
            try:
                raw = await http.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise RequestTooLargeError.from_http(exc) from None
            request = codec.parse(raw)
            check_limits(request, gateway.config.limits)
            if identity is not None and self.keys is not None:
                self.keys.admit(identity, request.model)
            gateway.resolve_model(request)
            ctx = RequestContext(request, request_id(http), identity, _Headers(http.headers),
                                 deadline=_deadline(http, gateway),
                                 client_ip=http.remote or "", trace=_trace(http),
                                 arrived=t0)
            return await self._run(gateway, http, codec, ctx, out, t0)
        except GatewayError as exc:
            return await self._fail(gateway, http, codec, ctx, out, exc)
        except asyncio.CancelledError:
            # once a reply has begun, no other can be sent
            error = self._stopped_here() if out.ttfb is None else None
            if error is None:  # the client went away
                out.fail(client_closed())
                raise
            return await self._fail(gateway, http, codec, ctx, out, error)
        except ConnectionResetError:
            out.fail(client_closed())
            raise
        except Exception:
            log.exception("unhandled error on %s %s", http.method, http.path)
            error = GatewayError("internal error; the details have been logged")
            out.fail(error)
            return await self._send(http, codec.error(error))
        finally:
            gateway.leave()
            self._in_flight.discard(task)  # type: ignore[arg-type]
            if self.events.listeners or gateway.listeners:
                if ctx is not None:  # made with the batch it is handed over in
                    self.events.emit_made(functools.partial(
                        ctx.exchange, out.status, out.error, out.usage, out.ttfb, started, t0,
                        time.perf_counter()), gateway.listeners)
                else:
                    self.events.emit(_rejected_exchange(http, codec.operation, identity, out,
                                                        started, t0), gateway.listeners)

    async def _run(self, gateway: Gateway, http: web.Request, codec: Codec,
                   ctx: RequestContext, out: _Outcome, t0: float) -> web.StreamResponse:
        if gateway.before:
            await gateway.run_before(ctx)
        key = None
        if ctx.response is None and gateway.cache is not None:
            key = await _cache_lookup(gateway.cache, http, ctx)
        answer = ctx.response
        fresh = answer is None
        store_key = key if fresh else None
        if fresh:
            gateway.check_route(ctx)
            result = await gateway.strategy.route(ctx, attempt_for(ctx, gateway.config.limits,
                                                                  gateway.gates))
        elif ctx.request.stream:
            result = replay(answer)
        else:
            result = answer
        if isinstance(result, ChunkStream):
            return await self._relay(gateway, http, codec, ctx, result, out, t0, store_key)
        ctx.response = result
        if gateway.after:  # may refuse the answer (an output guardrail)
            await gateway.run_after(ctx)
        if store_key is not None:
            await _cache_put(gateway, store_key, ctx)
        resp = codec.answer(ctx.response, _routing_headers(ctx))
        out.ttfb = time.perf_counter() - t0
        return await self._send(http, resp)

    async def _relay(self, gateway: Gateway, http: web.Request, codec: Codec,
                     ctx: RequestContext, stream: ChunkStream, out: _Outcome, t0: float,
                     store_key: str | None) -> web.StreamResponse:
        assembler = StreamAssembler() if gateway.after or store_key is not None else None
        filtering = bool(gateway.on_chunk)
        encoder = codec.stream(ctx)
        encode = encoder.chunk
        relay_raw = encoder.relays_raw and assembler is None and not filtering
        include_usage = ctx.request.include_usage
        usage: Usage | None = None
        error: GatewayError | None = None
        stopped = False
        pending: list[bytes] = []  # frames that arrived together, sent in one write

        def add(chunk: ChatChunk) -> None:
            nonlocal usage
            if assembler is not None:
                assembler.add(chunk.as_dict())
            if not chunk.carries_usage():
                pending.append(encode(chunk))
                return
            data = chunk.as_dict()
            usage = Usage.from_openai(data["usage"])
            if data.get("choices"):  # usage on a content chunk: split it off, as OpenAI does
                rest = {k: v for k, v in data.items() if k != "usage"}
                pending.append(encode(ChatChunk(rest)))
                data = {**rest, "choices": [], "usage": data["usage"]}
            if include_usage:
                pending.append(encode(ChatChunk(data)))

        def take(piece: ChatChunk | RawFrames) -> None:
            if isinstance(piece, ChatChunk):
                add(piece)
            elif relay_raw:
                pending.append(piece.frames)
            else:
                for chunk in piece.chunks():
                    add(chunk)

        async def take_filtered(piece: ChatChunk | RawFrames) -> None:
            for chunk in piece.chunks() if isinstance(piece, RawFrames) else (piece,):
                kept = await gateway.run_on_chunk(ctx, chunk)
                if kept is not None:
                    add(kept)

        resp = web.StreamResponse(headers={**encoder.headers, **_routing_headers(ctx)})
        self.stamp(http, resp)
        try:
            await resp.prepare(http)
            out.ttfb = time.perf_counter() - t0
            piece = stream.first
            async with asyncio.timeout_at(stream.deadline):
                while True:
                    if filtering:
                        await take_filtered(piece)
                    else:
                        take(piece)
                    if not piece.more and pending:
                        await resp.write(b"".join(pending))
                        pending.clear()
                    if stream.rest is None:
                        break
                    try:
                        piece = await stream.rest.__anext__()
                    except StopAsyncIteration:
                        break
            pending.append(encoder.done())
        except (asyncio.CancelledError, ConnectionResetError) as exc:
            error = self._stopped_here() if isinstance(exc, asyncio.CancelledError) else None
            if error is None:  # the client went away
                out.fail(client_closed())
                # the breaker is told nothing: a cancellation is no verdict on the upstream
                await stream.close(exc if isinstance(exc, asyncio.CancelledError)
                                   else asyncio.CancelledError())
                raise
            stopped = True
            pending.append(encoder.error(error))
        except (GatewayError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = stream.error_from(exc)
            log.warning("stream %s failed after it started: %s", ctx.request_id, error.message)
            pending.append(encoder.error(error))
        except Exception:  # a bug, here or in a provider: end the stream cleanly all the same
            log.exception("stream %s failed after it started", ctx.request_id)
            error = GatewayError("internal error; the details have been logged")
            pending.append(encoder.error(error))
        # a stream the shutdown ended is no verdict on the upstream either
        await stream.close(asyncio.CancelledError() if stopped else error)
        if pending:
            with contextlib.suppress(ConnectionResetError):
                await resp.write(b"".join(pending))
        ctx.usage = out.usage = usage
        if error is not None:
            out.fail(error)
            ctx.error = error
            if gateway.on_error:
                await gateway.run_on_error(ctx)
            return resp
        if assembler is not None:
            ctx.response = assembler.response(ctx.provider, usage)
            try:  # the answer is already with the client: a plugin can no longer change it
                await gateway.run_after(ctx)
            except GatewayError as exc:
                log.error("after_request on a sent stream %s failed: %s", ctx.request_id,
                          exc.message)
            if store_key is not None:
                await _cache_put(gateway, store_key, ctx)
        return resp

    async def _fail(self, gateway: Gateway, http: web.Request, codec: Codec,
                    ctx: RequestContext | None, out: _Outcome,
                    error: GatewayError) -> web.Response:
        """Answer ``error``, after the ``on_error`` plugins when the request was parsed."""
        out.fail(error)
        resp = codec.error(error)
        if ctx is not None:
            ctx.error = error
            if gateway.on_error:
                await gateway.run_on_error(ctx)
            resp.headers.update(_routing_headers(ctx))
        return await self._send(http, resp)

    async def _send(self, http: web.Request, resp: web.Response) -> web.Response:
        """Write a whole reply now, so the exchange is emitted after it (a client that has
        gone is no error here)."""
        self.stamp(http, resp)
        with contextlib.suppress(ConnectionResetError):
            await resp.prepare(http)
            await resp.write_eof()
        return resp


def _unstamped(_http: web.Request, _resp: web.StreamResponse) -> None:
    """A pipeline outside an app stamps nothing."""


def _trace(http: web.Request) -> TraceContext:
    headers = http.headers
    return TraceContext.from_headers(headers.get("traceparent"), headers.get("tracestate"))


#: The header a client sets to bound its request, in seconds.
TIMEOUT_HEADER = "X-Ferro-Timeout"


def _deadline(http: web.Request, gateway: Gateway) -> float | None:
    """The request's deadline (a ``loop.time()``) from ``X-Ferro-Timeout``, capped by
    ``server.max_request_timeout``; None without the header."""
    value = http.headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise InvalidRequestError(
            f"{TIMEOUT_HEADER} must be a positive number of seconds (got {value[:40]!r})",
            code="invalid_timeout")
    seconds = min(seconds, gateway.config.server.max_request_timeout)
    return asyncio.get_running_loop().time() + seconds


def _routing_headers(ctx: RequestContext) -> dict[str, str]:
    """The reply's headers besides its format's: the upstream's relayed ones, what plugins
    and strategies add, and which provider and model answered, after how many calls."""
    headers = {**ctx.upstream_headers, **ctx.reply_headers}
    target = ctx.target
    if target is not None:
        headers["X-Ferro-Provider"] = headers["X-Gateway-Provider"] = target.name
        headers["X-Ferro-Model"] = target.upstream_model(ctx.request.model)
        headers["X-Ferro-Attempts"] = str(ctx.attempts)
    return headers


#: The reply header that says whether the cache answered: HIT, MISS, or BYPASS (the
#: request is not cacheable, or the client sent ``Cache-Control: no-store``).
CACHE_HEADER = "X-Ferro-Cache"


async def _cache_lookup(cache: Cache, http: web.Request, ctx: RequestContext) -> str | None:
    """The request's cache key (None: the cache stays out of it), with ``ctx.response`` set
    on a hit. ``Cache-Control: no-store`` keeps the cache out, ``no-cache`` skips the
    lookup but stores the fresh answer, ``max-age=N`` refuses older entries."""
    control = _CacheControl(http.headers.get("Cache-Control"))
    key = None
    if not control.no_store:
        try:
            key = cache.key(ctx)
        except Exception:  # a cache that fails is a miss, never a failed request
            log.exception("cache key failed")
    if key is None:
        _cache_verdict(ctx, "BYPASS")
        return None
    entry = None
    if not control.no_cache:
        try:
            entry = await cache.get(key)
        except Exception:
            log.exception("cache lookup failed")
    age = entry.age() if entry is not None else 0.0
    if entry is None or (control.max_age is not None and age > control.max_age):
        _cache_verdict(ctx, "MISS")
        return key
    _cache_verdict(ctx, "HIT")
    ctx.reply_headers["Age"] = str(int(age))
    ctx.response = entry.answer()
    return key


def _cache_verdict(ctx: RequestContext, verdict: str) -> None:
    """Say it in the reply (``X-Ferro-Cache``) and in the exchange (``metadata.cache``:
    ``hit``, ``miss`` or ``bypass``)."""
    ctx.reply_headers[CACHE_HEADER] = verdict
    ctx.metadata["cache"] = verdict.lower()


async def _cache_put(gateway: Gateway, key: str, ctx: RequestContext) -> None:
    if ctx.response is None or gateway.cache is None:
        return
    try:
        await gateway.cache.put(key, ctx, ctx.response)
    except Exception:
        log.exception("cache store failed")


class _CacheControl:
    """The request directives of a ``Cache-Control`` header the cache honours."""

    __slots__ = ("max_age", "no_cache", "no_store")

    def __init__(self, value: str | None) -> None:
        self.no_store = self.no_cache = False
        self.max_age: float | None = None
        for directive in (value or "").lower().split(","):
            name, _, arg = directive.strip().partition("=")
            if name == "no-store":
                self.no_store = True
            elif name == "no-cache":
                self.no_cache = True
            elif name == "max-age":
                with contextlib.suppress(ValueError):
                    self.max_age = max(0.0, float(arg.strip().strip('"')))


_CREDENTIALS = frozenset({"x-api-key", "x-goog-api-key", "api-key"})
_ROUTABLE_PREFIXES = ("x-", "openai-", "anthropic-")


def routable_header(name: str) -> bool:
    """Whether strategies and plugins see request header ``name`` in
    ``RequestContext.headers``: ``X-*``, ``OpenAI-*``, ``Anthropic-*`` and ``User-Agent``,
    never a credential (``X-Api-Key``, ``Api-Key``, ``X-Goog-Api-Key``)."""
    lowered = name.lower()
    return lowered not in _CREDENTIALS and (lowered.startswith(_ROUTABLE_PREFIXES)
                                            or lowered == "user-agent")


class _Headers(Mapping[str, str]):
    """The request headers strategies and plugins may look at (see :func:`routable_header`),
    lower-cased. Selected on first use, so a request nobody asks about pays nothing."""

    __slots__ = ("_raw", "_selected")

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw
        self._selected: dict[str, str] | None = None

    def _select(self) -> dict[str, str]:
        if self._selected is None:
            self._selected = {}
            for name, value in self._raw.items():
                if routable_header(name):
                    self._selected[name.lower()] = value
        return self._selected

    def __getitem__(self, key: str) -> str:
        return self._select()[key.lower()]

    def __iter__(self) -> Any:
        return iter(self._select())

    def __len__(self) -> int:
        return len(self._select())


def _rejected_exchange(http: web.Request, operation: Operation, identity: Any,
                       out: _Outcome, started: float, t0: float) -> Exchange:
    """The exchange of a request refused before it was parsed (401, 413, 400)."""
    return Exchange(request_id=request_id(http), operation=operation.name, model="",
                    provider="", stream=False, status=out.status, started=started,
                    duration=time.perf_counter() - t0, error=out.error, identity=identity,
                    client_ip=http.remote or "", trace=_trace(http))
