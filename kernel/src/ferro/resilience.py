"""Circuit breakers and retry backoff, shared by every strategy."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from enum import IntEnum
from typing import TypeVar

from ferro.config import BreakerConfig, RetryConfig

__all__ = ["BreakerState", "CircuitBreaker", "backoff_delay", "retry_after_seconds", "within"]

T = TypeVar("T")


class BreakerState(IntEnum):
    """Values match the ``gateway_circuit_breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures; open -> half-open
    after ``timeout``; half-open lets ``half_open_max_requests`` trial calls through at once
    and closes after ``success_threshold`` successes, or reopens on any failure.
    ``on_change(old, new)``, when set, hears of every change of state."""

    __slots__ = ("_clock", "_failures", "_in_flight", "_opened_at", "_state", "_successes",
                 "config", "on_change")

    def __init__(self, config: BreakerConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._in_flight = 0
        self.on_change: Callable[[BreakerState, BreakerState], None] | None = None

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.config.timeout:
            self._successes = 0
            self._in_flight = 0
            self._become(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """Whether a call may go through now; a True answer must be followed by exactly
        one :meth:`record_success` or :meth:`record_failure` (or :meth:`release`)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._in_flight < self.config.half_open_max_requests:
            self._in_flight += 1
            return True
        return False

    def record_success(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._in_flight = max(0, self._in_flight - 1)
            self._successes += 1
            if self._successes >= self.config.success_threshold:
                self._failures = 0
                self._become(BreakerState.CLOSED)
        else:
            self._failures = 0

    def record_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._trip()
            return
        self._failures += 1
        if self._failures >= self.config.failure_threshold:
            self._trip()

    def release(self) -> None:
        """The call ended without a verdict on the upstream (e.g. the client went away)."""
        if self._state is BreakerState.HALF_OPEN:
            self._in_flight = max(0, self._in_flight - 1)

    def _trip(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._in_flight = 0
        self._become(BreakerState.OPEN)

    def _become(self, state: BreakerState) -> None:
        old, self._state = self._state, state
        if self.on_change is not None and old is not state:
            self.on_change(old, state)


def backoff_delay(retry: int, policy: RetryConfig) -> float:
    """The wait before retry number ``retry`` (1-based): ``backoff x factor^(retry-1)``,
    capped at ``max_backoff``, less a random part of up to ``jitter`` of it, so clients
    that failed together do not come back together."""
    ceiling = min(policy.max_backoff, policy.backoff * policy.factor ** (retry - 1))
    return ceiling * (1 - policy.jitter * random.random())


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP date (None
    when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def within(limit: float | None, awaitable: Awaitable[T],
           expired: Callable[[], BaseException]) -> Awaitable[T]:
    """``awaitable``, awaited for at most ``limit`` seconds (None: no limit, and nothing
    added around it); when this limit runs out, it raises ``expired()`` instead (a
    TimeoutError from inside passes as it is)."""
    if limit is None:
        return awaitable
    return _bounded(limit, awaitable, expired)


async def _bounded(limit: float, awaitable: Awaitable[T],
                   expired: Callable[[], BaseException]) -> T:
    try:
        async with asyncio.timeout(limit) as timer:
            return await awaitable
    except TimeoutError:
        if timer.expired():
            raise expired() from None
        raise
