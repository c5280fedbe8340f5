"""Trying one target: the one helper every strategy calls.

:func:`attempt_for` gives a strategy its ``attempt(target)``: admit the call through the
target's circuit breaker, call the provider method the operation names within the target's
time limits (and the request's own ``X-Ferro-Timeout``), retry per the target's retry
policy, classify what went wrong as a :class:`~ferro.errors.GatewayError`, and record the
verdict on the breaker.

- A retry follows only a retryable failure whose status the policy's ``retry_on`` lists,
  or a timeout or connection failure; never a client's own mistake, never an open circuit,
  never a client that went away (cancellation propagates at once, with no verdict).
- An upstream's ``Retry-After`` is honoured when it is within the policy's cap; a longer
  one ends this target's tries at once, so the strategy can move on.
- No wait outlives the request's deadline.

For a stream, a call has succeeded when the first chunk has arrived: the result is a
:class:`ChunkStream`, and the breaker's verdict waits for the stream's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, NoReturn, cast

import aiohttp
import attrs

from ferro.errors import (
    CircuitOpenError,
    GatewayError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    transport_error,
)
from ferro.operations import Answer, ChatChunk, RawFrames
from ferro.provider import CALL, CallScope
from ferro.resilience import CircuitBreaker, backoff_delay, retry_after_seconds, within
from ferro.types import Attempt, RequestContext, Target

__all__ = ["ChunkStream", "attempt_for"]

log = logging.getLogger("ferro.attempt")

Piece = ChatChunk | RawFrames

#: The code of the 504 for a request that ran out of its own time (no verdict on a target).
REQUEST_TIMEOUT = "request_timeout"


@attrs.define(eq=False)
class ChunkStream:
    """A stream whose first chunk has arrived. Read ``first``, then iterate ``rest`` (None
    when there is no more) until ``deadline`` (a ``loop.time()``, or None); then
    :meth:`close` it with the error that ended it, if any."""

    target: Target | None
    first: Piece
    rest: AsyncGenerator[Piece, None] | None = None
    deadline: float | None = None
    #: The limits that set ``deadline``.
    limits: _Limits | None = None

    def error_from(self, exc: BaseException) -> GatewayError:
        """The GatewayError for what interrupted reading the stream."""
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, TimeoutError) and self.limits is not None and self.target is not None:
            return self.limits.error(self.target, "end of the stream")
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
        policy = target.retry
        for n in range(1, policy.attempts + 1):
            try:
                return await once(ctx, target)
            except GatewayError as exc:
                wait = _retry_wait(exc, n, target, ctx)
                if wait is None:
                    raise
                log.info("retrying provider %s in %.3fs (attempt %d of %d): %s", target.name,
                         wait, n + 1, policy.attempts, exc.message)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: a target has at least one attempt")

    return attempt


def _retry_wait(exc: GatewayError, n: int, target: Target, ctx: RequestContext) -> float | None:
    """How long to wait before retrying ``target`` after failure ``n``, or None when it
    is not to be retried."""
    policy = target.retry
    if n >= policy.attempts or not exc.retryable or isinstance(exc, CircuitOpenError):
        return None
    transport = isinstance(exc, UpstreamTimeoutError | UpstreamConnectionError)
    if not transport and exc.status not in policy.retry_on:
        return None
    after = retry_after_seconds(exc.headers.get("Retry-After"))
    if after is not None:
        if after > policy.max_backoff:
            return None  # the upstream asks for longer than the policy waits: move on
        wait = after
    else:
        wait = backoff_delay(n, policy)
    if ctx.deadline is not None and asyncio.get_running_loop().time() + wait >= ctx.deadline:
        return None
    return wait


@attrs.define(slots=True)
class _Limits:
    """One call's time limits: ``total`` (seconds) bounds the call, ``deadline_bound``
    says whether the request's own deadline is what set it."""

    total: float | None
    deadline_bound: bool
    first_byte: float | None

    def first_chunk(self, target: Target) -> tuple[float | None,
                                                   Callable[[], UpstreamTimeoutError]]:
        """The limit on a stream's first chunk (its first-byte limit, or its total one when
        that is shorter), and the error for running out of it."""
        first_byte = self.first_byte
        if self.total is not None and (first_byte is None or self.total <= first_byte):
            return self.total, lambda: self.error(target, "first chunk")
        return first_byte, lambda: UpstreamTimeoutError(
            f"{target.name}: no first chunk within the target's first-byte timeout of "
            f"{first_byte:g}s", provider=target.name)

    def error(self, target: Target, what: str = "answer") -> UpstreamTimeoutError:
        if self.deadline_bound:
            return UpstreamTimeoutError(
                "the request ran out of the time it asked for (X-Ferro-Timeout) waiting for "
                f"{target.name}", provider=target.name, code=REQUEST_TIMEOUT, retryable=False)
        return UpstreamTimeoutError(
            f"{target.name}: no {what} within the target's total timeout of {self.total:g}s",
            provider=target.name)


def _limits(ctx: RequestContext, target: Target) -> _Limits:
    total = target.timeout.total
    bound = False
    if ctx.deadline is not None:
        left = ctx.deadline - asyncio.get_running_loop().time()
        if total is None or left < total:
            total, bound = max(left, 0.0), True
    return _Limits(total, bound, target.timeout.first_byte)


def _scope(target: Target) -> CallScope:
    t = target.timeout
    return CallScope({}, t.connect, t.first_byte, t.total)


def _admit(ctx: RequestContext, target: Target) -> None:
    if target.breaker is not None and not target.breaker.allow():
        raise CircuitOpenError(f"circuit breaker open for {target.name}")
    ctx.attempts += 1
    ctx.provider = target.name
    ctx.target = target


async def _call(ctx: RequestContext, target: Target) -> Answer:
    _admit(ctx, target)
    method = getattr(target.provider, ctx.request.operation.call)
    limits = _limits(ctx, target)
    scope = _scope(target)
    token = CALL.set(scope)
    try:
        answer = await within(limits.total, method(ctx.request), lambda: limits.error(target))
    except BaseException as exc:
        _raise_failed(target, exc)
    finally:
        CALL.reset(token)
    _record(target.breaker, None)
    ctx.upstream_headers = scope.headers
    return cast(Answer, answer)


async def _open_stream(ctx: RequestContext, target: Target) -> ChunkStream:
    _admit(ctx, target)
    method = getattr(target.provider, cast(str, ctx.request.operation.stream))
    limits = _limits(ctx, target)
    scope = _scope(target)
    token = CALL.set(scope)
    started = asyncio.get_running_loop().time()
    first_limit, first_expired = limits.first_chunk(target)
    try:
        agen = cast(AsyncGenerator[Piece, None], method(ctx.request).__aiter__())
        first = await within(first_limit, agen.__anext__(), first_expired)
    except StopAsyncIteration:
        exc = UpstreamError(f"{target.name} sent an empty stream", provider=target.name,
                            code="stream_truncated", retryable=True)
        _raise_failed(target, exc)
    except BaseException as exc:
        _raise_failed(target, exc)
    finally:
        CALL.reset(token)
    ctx.upstream_headers = scope.headers
    if limits.total is None:
        return ChunkStream(target, first, agen)
    return ChunkStream(target, first, agen, started + limits.total, limits)


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
    elif isinstance(exc, GatewayError) and exc.code == REQUEST_TIMEOUT:
        breaker.release()  # the request's own time ran out: no verdict on the upstream
    elif isinstance(exc, GatewayError) and not exc.retryable and exc.status < 500:
        breaker.record_success()  # the upstream answered; the request was at fault
    elif isinstance(exc, GatewayError | asyncio.TimeoutError | aiohttp.ClientError | OSError):
        breaker.record_failure()
    else:  # cancelled (the client left) or a bug: no verdict on the upstream
        breaker.release()
