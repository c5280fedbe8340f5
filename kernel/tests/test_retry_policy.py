"""The retry policy of a target: which failures are retried, how long between tries, and
what Retry-After and the request's deadline change."""

import asyncio
import time

import pytest
from ferro import (
    CircuitOpenError,
    InvalidRequestError,
    RequestContext,
    RetryConfig,
    Target,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    try_in_order,
)
from ferro.attempt import attempt_for
from ferro.config import BreakerConfig, Duration
from ferro.resilience import BreakerState, CircuitBreaker, backoff_delay, retry_after_seconds
from ferro.testing import StrategyContract, StubProvider


def target(provider, **retry):
    policy = RetryConfig(**{"backoff": Duration(0.001), "max_backoff": Duration(0.05), **retry})
    return Target(provider.name, provider, retry=policy)


async def call(t, ctx=None):
    ctx = ctx or StrategyContract.context()
    return await attempt_for(ctx)(t), ctx


@pytest.fixture
def sleeps(monkeypatch):
    seen = []
    real = asyncio.sleep

    async def fake_sleep(seconds, *args):
        seen.append(seconds)
        await real(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return seen


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_default_retry_on_statuses_are_retried(status, sleeps):
    a = StubProvider("a", fail_with=UpstreamError("x", status=status))
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=3))
    assert a.calls == 3 and len(sleeps) == 2


@pytest.mark.parametrize("error", [UpstreamTimeoutError("slow"), UpstreamConnectionError("gone")])
async def test_timeouts_and_connection_errors_are_retried_whatever_retry_on_says(error, sleeps):
    a = StubProvider("a", fail_with=error)
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=2, retry_on=[429]))
    assert a.calls == 2


async def test_a_status_left_out_of_retry_on_is_not_retried(sleeps):
    a = StubProvider("a", fail_with=UpstreamError("busy", status=503))
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=3, retry_on=[429]))
    assert a.calls == 1 and sleeps == []


@pytest.mark.parametrize("error", [
    UpstreamError("bad field", status=400),
    UpstreamError("too big", status=413),
    InvalidRequestError("nope"),
    CircuitOpenError("open"),
])
async def test_never_retried_even_when_listed(error, sleeps):
    a = StubProvider("a", fail_with=error)
    with pytest.raises(type(error)):
        await call(target(a, attempts=3, retry_on=[400, 413, 503]))
    assert a.calls <= 1 and sleeps == []


async def test_retry_after_within_the_cap_is_the_wait(sleeps):
    a = StubProvider("a", fail_with=UpstreamError("slow down", status=429,
                                                  headers={"Retry-After": "1"}))
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=2, max_backoff=Duration(2)))
    assert sleeps == [1.0]


async def test_retry_after_beyond_the_cap_moves_on_at_once(sleeps):
    a = StubProvider("a", fail_with=UpstreamError("slow down", status=429,
                                                  headers={"Retry-After": "30"}))
    b = StubProvider("b")
    ctx = StrategyContract.context()
    targets = [target(a, attempts=3, max_backoff=Duration(2)), target(b)]
    started = time.perf_counter()
    answer = await try_in_order(ctx, targets, attempt_for(ctx))
    assert answer.provider == "b"
    assert (a.calls, b.calls) == (1, 1) and sleeps == []
    assert time.perf_counter() - started < 0.5


def test_backoff_grows_by_factor_up_to_the_cap_with_jitter_below_it():
    policy = RetryConfig(backoff=Duration(0.1), factor=3.0, max_backoff=Duration(1.0), jitter=0.2)
    for n, ceiling in [(1, 0.1), (2, 0.3), (3, 0.9), (4, 1.0), (9, 1.0)]:
        delays = [backoff_delay(n, policy) for _ in range(200)]
        assert all(ceiling * 0.8 - 1e-9 <= d <= ceiling + 1e-9 for d in delays)
        assert max(delays) - min(delays) > 0  # jittered
    exact = RetryConfig(backoff=Duration(0.1), jitter=0.0)
    assert [backoff_delay(n, exact) for n in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    from email.utils import formatdate

    later = retry_after_seconds(formatdate(time.time() + 10, usegmt=True))
    assert 8 < later <= 10
    assert retry_after_seconds(formatdate(time.time() - 100, usegmt=True)) == 0.0


async def test_no_wait_outlives_the_request_deadline(sleeps):
    a = StubProvider("a", fail_with=UpstreamError("busy", status=503))
    ctx = StrategyContract.context()
    ctx.deadline = asyncio.get_running_loop().time() + 0.0005
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=5, backoff=Duration(0.01)), ctx)
    assert a.calls == 1 and sleeps == []


async def test_a_client_that_leaves_is_never_retried_and_gives_no_verdict():
    class Leaving(StubProvider):
        async def chat(self, request):
            self.calls += 1
            raise asyncio.CancelledError

    a = Leaving("a")
    t = target(a, attempts=3)
    t.breaker = CircuitBreaker(BreakerConfig(failure_threshold=1))
    with pytest.raises(asyncio.CancelledError):
        await call(t)
    assert a.calls == 1 and t.breaker.state is BreakerState.CLOSED


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_breaker_transitions_with_an_injected_clock():
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=3, success_threshold=2,
                                           timeout=Duration(30), half_open_max_requests=1),
                             clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success()  # a success resets the count of consecutive failures
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.2
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN  # needs two successes
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    for _ in range(3):
        breaker.record_failure()
    clock.now += 31
    assert breaker.allow()
    breaker.record_failure()  # a failed probe reopens it
    assert breaker.state is BreakerState.OPEN and not breaker.allow()


async def test_an_open_breaker_skips_the_target_without_a_call():
    a = StubProvider("a")
    t = target(a)
    t.breaker = CircuitBreaker(BreakerConfig(failure_threshold=1))
    t.breaker.record_failure()
    with pytest.raises(CircuitOpenError):
        await call(t)
    assert a.calls == 0


async def test_every_attempt_is_counted_on_the_context(sleeps):
    a = StubProvider("a", fail_with=UpstreamError("busy", status=503))
    ctx = RequestContext(StrategyContract.context().request, "r")
    with pytest.raises(UpstreamError):
        await call(target(a, attempts=3), ctx)
    assert (ctx.attempts, ctx.tried, ctx.provider) == (3, ["a"], "a")
