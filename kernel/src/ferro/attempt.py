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
- A provider that fails to translate the request into its own format before calling its
  upstream (a TypeError, KeyError, ValueError... while building the upstream request) is
  answered with a 400 (:func:`~ferro.errors.untranslatable`): never retried, never sent
  elsewhere, no verdict on the breaker.

For a stream, a call has succeeded when the first chunk has arrived: the result is a
:class:`ChunkStream`, and the breaker's verdict waits for the stream's end. A stream runs
for ``limits.max_stream_duration`` at most (or the target's total timeout when shorter):
past it, it ends with an error event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, cast

import aiohttp
import attrs

from ferro.config import LimitsConfig
from ferro.errors import (
    CircuitOpenError,
    GatewayError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    transport_error,
    untranslatable,
)
from ferro.operations import Answer, ChatChunk, RawFrames
from ferro.provider import CALL, CallScope
from ferro.resilience import CircuitBreaker, backoff_delay, retry_after_seconds, within
from ferro.tracing import new_span_id
from ferro.types import Attempt, Call, RequestContext, Target

__all__ = ["ChunkStream", "attempt_for"]

log = logging.getLogger("ferro.attempt")

Piece = ChatChunk | RawFrames

#: The code of the 504 for a request that ran out of its own time (no verdict on a target).
REQUEST_TIMEOUT = "request_timeout"
#: What a provider raises when the request holds something its translation cannot read.
_TRANSLATION_FAILURES = (TypeError, ValueError, LookupError, AttributeError)
_DEFAULT_LIMITS = LimitsConfig()
#: A plugin's ``before_attempt(ctx, target)``.
Gate = Callable[[RequestContext, Target], Awaitable[None]]


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
            return self.limits.stream_error(self.target)
        return transport_error(self.target.name if self.target else "upstream", exc)

    async def close(self, error: BaseException | None) -> None:
        """Release the upstream connection at once, and give the breaker its verdict
        (``error`` is a CancelledError when the client went away)."""
        close = getattr(self.rest, "aclose", None)
        if close is not None:
            await close()
        if self.target is not None:
            _record(self.target.breaker, error)


def attempt_for(ctx: RequestContext, limits: LimitsConfig = _DEFAULT_LIMITS,
                gates: Sequence[Gate] = ()) -> Attempt[Any]:
    """The ``attempt(target)`` a strategy calls for this request, within the config's
    ``limits`` (see :class:`~ferro.config.LimitsConfig`). Each of ``gates`` (the plugins'
    ``before_attempt``) may refuse a call before it is made: its error ends this target's
    tries, with no verdict on its breaker."""
    once = _open_stream if ctx.request.stream else _call

    async def attempt(target: Target) -> Any:
        ctx.tried.append(target.name)
        policy = target.retry
        for n in range(1, policy.attempts + 1):
            for gate in gates:
                await gate(ctx, target)
            try:
                return await once(ctx, target, limits)
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
    says whether the request's own deadline is what set it; a stream runs for
    ``stream_duration`` at most."""

    total: float | None
    deadline_bound: bool
    first_byte: float | None
    stream_duration: float

    def stream_seconds(self) -> float:
        """How long a stream may run, from its call."""
        if self.total is None:
            return self.stream_duration
        return min(self.total, self.stream_duration)

    def stream_error(self, target: Target) -> UpstreamTimeoutError:
        """The error for a stream that ran out of :meth:`stream_seconds`."""
        if self.total is not None and self.total <= self.stream_duration:
            return self.error(target, "end of the stream")
        return UpstreamTimeoutError(
            f"{target.name}: the stream ran longer than limits.max_stream_duration "
            f"({self.stream_duration:g}s)", provider=target.name, code="stream_too_long",
            retryable=False)

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


def _limits(ctx: RequestContext, target: Target, limits: LimitsConfig) -> _Limits:
    total = target.timeout.total
    bound = False
    if ctx.deadline is not None:
        left = ctx.deadline - asyncio.get_running_loop().time()
        if total is None or left < total:
            total, bound = max(left, 0.0), True
    return _Limits(total, bound, target.timeout.first_byte, limits.max_stream_duration)


def _scope(target: Target, limits: LimitsConfig) -> CallScope:
    t = target.timeout
    return CallScope({}, t.connect, t.first_byte, t.total, limits)


def _admit(ctx: RequestContext, target: Target, scope: CallScope) -> Call:
    """Let the call through the target's breaker, and record it on ``ctx`` (its span in
    the request's trace goes upstream in ``scope``)."""
    call = Call(target.name, time.perf_counter() - ctx.arrived, 0.0, span_id=new_span_id(),
                kind=target.kind)
    ctx.calls.append(call)
    if target.breaker is not None and not target.breaker.allow():
        error = CircuitOpenError(f"circuit breaker open for {target.name}")
        call.status, call.error = error.status, error.code
        raise error
    ctx.attempts += 1
    ctx.provider = target.name
    ctx.target = target
    if ctx.trace is not None:
        scope.outgoing = ctx.trace.headers(call.span_id)  # type: ignore[arg-type]
    return call


def _ended(ctx: RequestContext, call: Call, error: BaseException | None) -> None:
    """Record how long ``call`` took, and how it failed."""
    call.duration = time.perf_counter() - ctx.arrived - call.start
    if isinstance(error, GatewayError):
        call.status, call.error = error.status, error.code
    elif error is not None:  # cancelled: the client went away
        call.status, call.error = 499, "client_closed"


async def _call(ctx: RequestContext, target: Target, config: LimitsConfig) -> Answer:
    scope = _scope(target, config)
    call = _admit(ctx, target, scope)
    method = getattr(target.provider, ctx.request.operation.call)
    limits = _limits(ctx, target, config)
    token = CALL.set(scope)
    try:
        answer = await within(limits.total, method(ctx.request), lambda: limits.error(target))
    except BaseException as exc:
        _raise_failed(ctx, call, target, exc, scope)
    finally:
        CALL.reset(token)
    _ended(ctx, call, None)
    _record(target.breaker, None)
    ctx.upstream_headers = scope.headers
    return cast(Answer, answer)


async def _open_stream(ctx: RequestContext, target: Target, config: LimitsConfig
                       ) -> ChunkStream:
    scope = _scope(target, config)
    call = _admit(ctx, target, scope)
    method = getattr(target.provider, cast(str, ctx.request.operation.stream))
    limits = _limits(ctx, target, config)
    token = CALL.set(scope)
    started = asyncio.get_running_loop().time()
    first_limit, first_expired = limits.first_chunk(target)
    try:
        agen = cast(AsyncGenerator[Piece, None], method(ctx.request).__aiter__())
        first = await within(first_limit, agen.__anext__(), first_expired)
    except StopAsyncIteration:
        exc = UpstreamError(f"{target.name} sent an empty stream", provider=target.name,
                            code="stream_truncated", retryable=True)
        _raise_failed(ctx, call, target, exc, scope)
    except BaseException as exc:
        _raise_failed(ctx, call, target, exc, scope)
    finally:
        CALL.reset(token)
    _ended(ctx, call, None)
    ctx.upstream_headers = scope.headers
    return ChunkStream(target, first, agen, started + limits.stream_seconds(), limits)


def _raise_failed(ctx: RequestContext, call: Call, target: Target, exc: BaseException,
                  scope: CallScope) -> NoReturn:
    """Record a failed call on ``ctx`` and the target's breaker, and raise it as a
    GatewayError (cancellation and other BaseExceptions as they are)."""
    try:
        _raise_as_gateway_error(target, exc, scope)
    except BaseException as error:
        _ended(ctx, call, error)
        raise


def _raise_as_gateway_error(target: Target, exc: BaseException, scope: CallScope) -> NoReturn:
    if isinstance(exc, _TRANSLATION_FAILURES) and not scope.sent:
        if target.breaker is not None:
            target.breaker.release()  # the upstream was never called: no verdict on it
        log.warning("provider %s could not translate a request: %s: %s", target.name,
                    type(exc).__name__, exc)
        raise untranslatable(target.name, exc) from exc
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
