"""Trying one target: the one helper every strategy calls.

:func:`attempt_for` gives a strategy its ``attempt(target)``: admit the call through the
target's circuit breaker, call the provider method the operation names, retry retryable
failures per the target's policy with jittered backoff, classify what went wrong as a
:class:`~ferro.errors.GatewayError`, and record the verdict on the breaker. The provider's
own timeout bounds each call. A client that went away (cancellation) is never retried and
never counted as a success or a failure of the upstream.

For a stream, a call has succeeded when the first chunk has arrived: the result is a
:class:`ChunkStream`, and the breaker's verdict waits for the stream's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any, NoReturn, cast

import aiohttp
import attrs

from ferro.errors import CircuitOpenError, GatewayError, UpstreamError, transport_error
from ferro.operations import Answer, ChatChunk, RawFrames
from ferro.provider import UPSTREAM_HEADERS
from ferro.resilience import CircuitBreaker, backoff_delay
from ferro.types import Attempt, RequestContext, Target

__all__ = ["ChunkStream", "attempt_for"]

log = logging.getLogger("ferro.attempt")

Piece = ChatChunk | RawFrames


@attrs.define(eq=False)
class ChunkStream:
    """A stream whose first chunk has arrived. Read ``first``, then iterate ``rest`` (None
    when there is no more); then :meth:`close` it with the error that ended it, if any."""

    target: Target | None
    first: Piece
    rest: AsyncGenerator[Piece, None] | None = None

    def error_from(self, exc: BaseException) -> GatewayError:
        """The GatewayError for what interrupted reading the stream."""
        if isinstance(exc, GatewayError):
            return exc
        return transport_error(self.target.name if self.target else "upstream", exc)

    async def close(self, error: BaseException | None) -> None:
        """Release the upstream connection at once, and give the breaker its verdict
        (``error`` is a CancelledError when the client went away)."""
        close = getattr(self.rest, "aclose", None)
        if close is not None:
            await close()
        if self.target is not None:
            _record(self.target.breaker, error)


def attempt_for(ctx: RequestContext) -> Attempt[Any]:
    """The ``attempt(target)`` a strategy calls for this request."""
    once = _open_stream if ctx.request.stream else _call

    async def attempt(target: Target) -> Any:
        ctx.tried.append(target.name)
        tries = target.retry.attempts
        for n in range(1, tries + 1):
            try:
                return await once(ctx, target)
            except GatewayError as exc:
                if n == tries or not exc.retryable or isinstance(exc, CircuitOpenError):
                    raise
                log.info("retrying provider %s (attempt %d of %d): %s", target.name, n + 1,
                         tries, exc.message)
                await asyncio.sleep(backoff_delay(n, target.retry))
        raise AssertionError("unreachable: a target has at least one attempt")

    return attempt


def _admit(ctx: RequestContext, target: Target) -> None:
    if target.breaker is not None and not target.breaker.allow():
        raise CircuitOpenError(f"circuit breaker open for {target.name}")
    ctx.attempts += 1
    ctx.provider = target.name


async def _call(ctx: RequestContext, target: Target) -> Answer:
    _admit(ctx, target)
    method = getattr(target.provider, ctx.request.operation.call)
    sink: dict[str, str] = {}
    token = UPSTREAM_HEADERS.set(sink)
    try:
        answer = await method(ctx.request)
    except BaseException as exc:
        _raise_failed(target, exc)
    finally:
        UPSTREAM_HEADERS.reset(token)
    _record(target.breaker, None)
    sink["x-gateway-provider"] = target.name
    ctx.upstream_headers = sink
    return cast(Answer, answer)


async def _open_stream(ctx: RequestContext, target: Target) -> ChunkStream:
    _admit(ctx, target)
    method = getattr(target.provider, cast(str, ctx.request.operation.stream))
    sink: dict[str, str] = {}
    token = UPSTREAM_HEADERS.set(sink)
    try:
        agen = cast(AsyncGenerator[Piece, None], method(ctx.request).__aiter__())
        first = await agen.__anext__()
    except StopAsyncIteration:
        exc = UpstreamError(f"{target.name} sent an empty stream", provider=target.name,
                            code="stream_truncated", retryable=True)
        _raise_failed(target, exc)
    except BaseException as exc:
        _raise_failed(target, exc)
    finally:
        UPSTREAM_HEADERS.reset(token)
    sink["x-gateway-provider"] = target.name
    ctx.upstream_headers = sink
    return ChunkStream(target, first, agen)


def _raise_failed(target: Target, exc: BaseException) -> NoReturn:
    """Record a failed call on the target's breaker, and raise it as a GatewayError
    (cancellation and other BaseExceptions as they are)."""
    _record(target.breaker, exc)
    if isinstance(exc, GatewayError) or not isinstance(exc, Exception):
        raise exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        raise transport_error(target.name, exc) from exc
    log.exception("provider %s raised %s", target.name, type(exc).__name__, exc_info=exc)
    raise UpstreamError(f"provider {target.name} failed: {type(exc).__name__}: {exc}",
                        provider=target.name, status=502, code="provider_error",
                        retryable=True) from exc


def _record(breaker: CircuitBreaker | None, exc: BaseException | None) -> None:
    if breaker is None:
        return
    if exc is None:
        breaker.record_success()
    elif isinstance(exc, GatewayError) and not exc.retryable and exc.status < 500:
        breaker.record_success()  # the upstream answered; the request was at fault
    elif isinstance(exc, GatewayError | asyncio.TimeoutError | aiohttp.ClientError | OSError):
        breaker.record_failure()
    else:  # cancelled (the client left) or a bug: no verdict on the upstream
        breaker.release()
