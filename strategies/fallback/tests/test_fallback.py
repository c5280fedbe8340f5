import asyncio

import pytest
from ferro import (
    CircuitOpenError,
    InvalidRequestError,
    RetryConfig,
    UpstreamError,
    UpstreamTimeoutError,
)
from ferro.testing import StrategyContract, StubProvider
from ferro_strategy_fallback import FallbackStrategy


class TestFallbackContract(StrategyContract):
    mode = "fallback"


def make(*providers, attempts=1):
    contract = TestFallbackContract()
    return FallbackStrategy(contract.strategy_config(),
                            contract.targets(*providers, attempts=attempts))


async def route(strategy):
    return await StrategyContract.route(strategy)


async def test_falls_back_to_the_next_target_on_retryable_errors():
    a = StubProvider("a", fail_with=UpstreamError("overloaded", status=503))
    b = StubProvider("b")
    response = await route(make(a, b, attempts=3))
    assert response.provider == "b"
    assert (a.calls, b.calls) == (3, 1)


@pytest.mark.parametrize("error", [
    UpstreamError("slow down", status=429),
    UpstreamTimeoutError("timed out"),
    UpstreamError("boom", status=500),
])
async def test_retries_retryable_errors_on_the_same_target(error):
    a = StubProvider("a", fail_with=error)
    with pytest.raises(UpstreamError):
        await route(make(a, attempts=3))
    assert a.calls == 3


async def test_client_validation_errors_are_not_retried():
    a = StubProvider("a", fail_with=UpstreamError("bad schema", status=400))
    b = StubProvider("b")
    with pytest.raises(UpstreamError):
        await route(make(a, b, attempts=3))
    assert (a.calls, b.calls) == (1, 0)


async def test_upstream_auth_error_moves_on_without_retrying():
    a = StubProvider("a", fail_with=UpstreamError("bad key", status=401))
    b = StubProvider("b")
    response = await route(make(a, b, attempts=3))
    assert response.provider == "b"
    assert a.calls == 1


async def test_open_circuit_moves_on_without_waiting():
    a = StubProvider("a", fail_with=CircuitOpenError("open"))
    b = StubProvider("b")
    response = await route(make(a, b, attempts=5))
    assert response.provider == "b"
    assert a.calls == 1


async def test_skips_targets_that_do_not_serve_the_model():
    class Picky(StubProvider):
        def supports_model(self, model):
            return False

    a, b = Picky("a"), StubProvider("b")
    assert (await route(make(a, b))).provider == "b"
    assert a.calls == 0


async def test_last_error_is_returned_when_all_fail():
    a = StubProvider("a", fail_with=UpstreamError("a down", status=503))
    b = StubProvider("b", fail_with=UpstreamError("b limited", status=429, headers={"Retry-After": "3"}))
    with pytest.raises(UpstreamError) as info:
        await route(make(a, b, attempts=2))
    assert info.value.status == 429
    assert info.value.headers == {"Retry-After": "3"}


async def test_backoff_grows_between_attempts(monkeypatch):
    delays = []

    async def fake_sleep(seconds):
        delays.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    strategy = make(a, attempts=4)
    strategy.targets[0].retry = RetryConfig(attempts=4, backoff=0.1, max_backoff=10, jitter=0.5)
    with pytest.raises(UpstreamError):
        await route(strategy)
    assert len(delays) == 3
    for n, delay in enumerate(delays, start=1):
        ceiling = 0.1 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling


async def test_no_supporting_target_is_model_not_found():
    class Picky(StubProvider):
        def supports_model(self, model):
            return False

    from ferro import ModelNotFoundError
    with pytest.raises(ModelNotFoundError):
        await route(make(Picky("a")))


async def test_invalid_request_from_first_target_is_raised_as_is():
    a = StubProvider("a", fail_with=InvalidRequestError("nope"))
    with pytest.raises(InvalidRequestError, match="nope"):
        await route(make(a, StubProvider("b")))


async def test_falling_back_is_logged_only_when_a_target_is_left(caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="ferro.routing")
    a = StubProvider("a", fail_with=UpstreamError("a down", status=503))
    b = StubProvider("b", fail_with=UpstreamError("b down", status=503))
    with pytest.raises(UpstreamError, match="b down"):
        await route(make(a, b))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["provider a failed, falling back to b: a down"]
